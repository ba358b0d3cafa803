"""The real-world input cases of ../shared/cases, run as a user would, each with the verdict its README table gives.

`../shared/cases/media` is one ingest root in the `folder` layout (`<case>/<clip>.<ext>` + `<clip>.txt`);
`../shared/cases/user.dict` is the user dictionary. The stages ingest, audio_features, align, faces and
fit3dmm run on it in a temporary project with the repository's params.yaml, changed only where the
cases' README says (`ingest.source: folder`, its root, `align.dictionary`, every `max_reject_fraction:
1.0`), and each case's verdict is asserted: the stage and reason that quarantined it, or accepted by
every stage, plus the facts its row names (frame counts, sizes, timing, pronunciations).

Timing facts (audio/video offsets) are measured against the GRID originals the cases were cut from
(`../shared/data/grid/<clip>.mpg`): the canonical wav is cross-correlated with the original's audio
and each canonical frame matched to the original's frames, so "in sync" needs no trained expert.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from headflow import params as params_mod
from headflow.manifest import read_manifest

pytestmark = [pytest.mark.shared, pytest.mark.e2e, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
STAGES = ("ingest", "audio_features", "align", "faces", "fit3dmm")
FPS = 25


@pytest.fixture(scope="module")
def cases_dir(shared_dir: Path) -> Path:
    path = shared_dir / "cases"
    if not (path / "media").is_dir() or not (path / "user.dict").is_file():
        pytest.skip(f"the real-world input cases are not at {path} (media/ and user.dict expected)")
    return path


def _params(block: str, **changes):
    p = params_mod.load(block, ROOT / "params.yaml")
    return dataclasses.replace(p, **changes)


@dataclasses.dataclass
class Run:
    project: Path
    media: Path
    clips: pd.DataFrame                       # ingest's accepted clips
    quarantine: dict[str, pd.DataFrame]       # stage -> quarantine rows
    tables: dict[str, pd.DataFrame]           # other manifests by "stage.name"
    metrics: dict[str, dict]

    def rows(self, case: str) -> pd.DataFrame:
        """ingest's accepted clips of one case (source paths `<case>/...`)."""
        return self.clips[self.clips.source_path.str.startswith(case + "/")]

    def verdict(self, case: str) -> dict[str, dict[str, str]]:
        """{source_path: {stage: reason_code}} for every input of `case`; {} per input accepted everywhere."""
        out: dict[str, dict[str, str]] = {}
        inputs = set(self.rows(case).source_path)
        for stage, q in self.quarantine.items():
            for r in q[q.source_path.str.startswith(case + "/")].itertuples():
                out.setdefault(r.source_path, {})[stage] = r.reason_code
                inputs.add(r.source_path)
        return {p: out.get(p, {}) for p in sorted(inputs)}

    def message(self, case: str, stage: str) -> str:
        q = self.quarantine[stage]
        return " | ".join(q[q.source_path.str.startswith(case + "/")].message)


@pytest.fixture(scope="module")
def run(cases_dir: Path, tmp_path_factory) -> Run:
    from headflow.align.stage import run_stage as align
    from headflow.audio.stage import run_stage as audio_features
    from headflow.faces.stage import run_stage as faces
    from headflow.fit3dmm.stage import run_stage as fit3dmm
    from headflow.ingest.stage import run_stage as ingest

    project = tmp_path_factory.mktemp("cases")
    everything = {"max_reject_fraction": 1.0}
    with contextlib.chdir(project):     # stages write the catalog's relative paths under the project root
        metrics = {
            "ingest": ingest(_params("ingest", source="folder", root=str(cases_dir / "media"), **everything),
                             progress=False),
            "audio_features": audio_features(_params("audio_features", **everything), progress=False),
            "align": align(_params("align", dictionary=str(cases_dir / "user.dict"), **everything), progress=False),
            "faces": faces(_params("faces", **everything), progress=False),
            "fit3dmm": fit3dmm(_params("fit3dmm", truth_root=None, **everything), progress=False),
        }
    interim = project / "data/interim"
    quarantine = {s: read_manifest(interim / s / "quarantine.parquet", "quarantine") for s in STAGES}
    tables = {f"{s}.{n}": read_manifest(interim / s / f"{n}.parquet", n)
              for s, n in (("audio_features", "audio_features"), ("align", "alignments"), ("align", "words"),
                           ("align", "phones"), ("align", "frame_labels"), ("faces", "faces"),
                           ("faces", "landmarks"), ("fit3dmm", "fits"))}
    clips = read_manifest(interim / "ingest/clips.parquet", "clips")
    return Run(project, cases_dir / "media", clips, quarantine, tables, metrics)


# --- timing against the GRID originals ---------------------------------------------------------------

def _grey_small(frame: np.ndarray) -> np.ndarray:
    import cv2

    g = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    return cv2.resize(g, (72, 56), interpolation=cv2.INTER_AREA).astype(np.float32)


def _frames(path: Path) -> np.ndarray:
    """Every frame of a video (PyAV, display size with the sample aspect ratio applied), grey, 72x56."""
    import av

    with av.open(str(path)) as c:
        return np.stack([_grey_small(f.to_ndarray(format="rgb24")) for f in c.decode(video=0)])


def _audio_16k(path: Path) -> np.ndarray:
    from scipy.signal import resample_poly

    from headflow.media import read_audio

    wav, sr = read_audio(path)
    g = np.gcd(int(sr), 16000)
    return resample_poly(wav, 16000 // g, int(sr) // g).astype(np.float32)


def video_lag_frames(clip_video: Path, original: Path, window: int | None = None) -> np.ndarray:
    """Per canonical frame f: the original's best-matching frame index minus f (correlation of zero-mean,
    unit-variance grey thumbnails). With `window`, the match is sought only within +-window frames of
    f + the median lag (a still face between words looks alike at distant frames)."""
    ours, theirs = _frames(clip_video), _frames(original)
    a = ours.reshape(len(ours), -1)
    b = theirs.reshape(len(theirs), -1)
    a = (a - a.mean(1, keepdims=True)) / (a.std(1, keepdims=True) + 1e-6)
    b = (b - b.mean(1, keepdims=True)) / (b.std(1, keepdims=True) + 1e-6)
    score = a @ b.T
    f = np.arange(len(a))
    if window is not None:
        centre = f + int(np.median(score.argmax(1) - f))
        far = np.abs(np.arange(len(b))[None, :] - centre[:, None]) > window
        score[far] = -np.inf
    return score.argmax(1) - f


def audio_lag_s(clip_wav: Path, original: Path) -> float:
    """Seconds to add to a time of the canonical wav to find the same sound in the original."""
    from scipy.signal import correlate

    ours, theirs = _audio_16k(clip_wav), _audio_16k(original)
    # the original's window at lag L covers theirs[L : L + len(ours)]; normalise by its energy
    c = correlate(theirs, ours, mode="full", method="fft")
    lags = np.arange(-len(ours) + 1, len(theirs))
    energy = np.sqrt(np.convolve(theirs ** 2, np.ones(len(ours)), mode="full") + 1e-9)
    return float(lags[np.argmax(c / energy)] / 16000)


def sync_offset_frames(run: Run, row) -> float:
    """Audio lag behind the video in frames (> 0: audio late), as sync_check reports offsets."""
    original = run.media.parent.parent / "data/grid" / f"{Path(row.source_path).stem}.mpg"
    video = float(np.median(video_lag_frames(run.project / row.video_path, original)))
    audio = audio_lag_s(run.project / row.audio_path, original) * FPS
    return video - audio


# --- the table -----------------------------------------------------------------------------------------

ACCEPTED = ("control", "vfr", "audio_late", "video_late", "mulaw8k", "odd_size", "anamorphic", "gray", "webm",
            "hevc10", "editlist_cut", "numbers", "utf16", "apostrophe", "odd_name", "other_ext", "jumpcut")


@pytest.mark.parametrize("case", ACCEPTED)
def test_accepted_by_every_stage(run, case):
    verdict = run.verdict(case)
    assert verdict and all(v == {} for v in verdict.values()), f"{case}: {verdict}; " + "; ".join(
        f"{s}: {run.message(case, s)}" for s in STAGES if run.message(case, s))
    for row in run.rows(case).itertuples():
        for table in ("audio_features.audio_features", "align.alignments", "faces.faces", "fit3dmm.fits"):
            assert row.clip_id in set(run.tables[table].clip_id), f"{case}: {row.source_path} missing from {table}"


def _one(run: Run, case: str):
    rows = run.rows(case)
    assert len(rows) == 1, f"{case}: expected one accepted clip, got {list(rows.source_path)}"
    return next(rows.itertuples())


@pytest.mark.parametrize("case, expected", [("control", 0), ("audio_late", 15), ("video_late", -15), ("webm", 0),
                                            ("mulaw8k", 0), ("vfr", 0), ("editlist_cut", 0)])
def test_sync_offset_as_recorded_in_the_file(run, case, expected):
    offset = sync_offset_frames(run, _one(run, case))
    assert abs(offset - expected) <= 1, f"{case}: audio lags the video by {offset:+.1f} frames, expected {expected:+d}"


def test_audio_late_keeps_its_leading_silence(run):
    from headflow.media import read_audio

    wav, sr = read_audio(run.project / _one(run, "audio_late").audio_path)
    lead = wav[: int(0.55 * sr)]
    assert np.sqrt(np.mean(lead ** 2)) < 1e-3 < np.sqrt(np.mean(wav[int(0.7 * sr):] ** 2))


def test_vfr_gives_75_constant_rate_frames_of_the_right_source_frames(run):
    row = _one(run, "vfr")
    assert row.n_frames == 75 and row.fps == FPS
    lag = video_lag_frames(run.project / row.video_path, run.media.parent.parent / "data/grid/brbk7n.mpg", window=4)
    lag -= int(np.median(lag))
    # the ~17 fps stretch holds each source frame for one or two canonical frames: at most one frame off
    assert np.abs(lag).max() <= 1, lag


def test_mulaw_8k_becomes_16k_with_its_duration(run):
    row = _one(run, "mulaw8k")
    af = run.tables["audio_features.audio_features"].set_index("clip_id").loc[row.clip_id]
    # the mu-law track holds 23824 samples at 8 kHz = 2.978 s
    assert row.sample_rate == 16000 and row.native_sample_rate == 8000 and abs(af.duration_s - 23824 / 8000) < 0.005


def test_frame_sizes(run):
    odd = _one(run, "odd_size")
    # 361x287 coded with a 1435:1444 sample aspect ratio: 358.75x287 square pixels, rounded down to even
    assert (odd.width, odd.height) == (358, 286)
    ana = _one(run, "anamorphic")
    assert (ana.width, ana.height) == (360, 288)


def test_editlist_cut_is_the_presented_42_frames_with_matching_audio(run):
    row = _one(run, "editlist_cut")
    af = run.tables["audio_features.audio_features"].set_index("clip_id").loc[row.clip_id]
    assert abs(row.native_n_frames - 42) <= 1 and abs(row.n_frames - 42) <= 1, row
    assert abs(row.duration_s - 1.7) < 0.05 and abs(af.duration_s - row.duration_s) < 0.15


def test_corrupt_is_unreadable(run):
    assert run.verdict("corrupt") == {"corrupt/lrwp9a.mp4": {"ingest": "unreadable"}}


def test_too_long_transcript_fails_alignment(run):
    assert run.verdict("too_long") == {"too_long/lrwp9a.mp4": {"align": "align_failed"}}


def test_fadein_is_low_detection_rate_or_its_black_frames_are_invalid(run):
    verdict = run.verdict("fadein")["fadein/lbax4n.mp4"]
    if verdict:
        assert verdict == {"faces": "low_detection_rate"}, verdict
        return
    row = _one(run, "fadein")
    lm = run.tables["faces.landmarks"]
    valid = lm[lm.clip_id == row.clip_id].sort_values("frame").valid.to_numpy()
    assert not valid[:15].any()                 # black until 0.8 s (frame 20)


def test_antiphase_stereo_keeps_audible_speech_or_names_the_cancellation(run):
    verdict = run.verdict("antiphase")["antiphase/swwp2s.mp4"]
    assert "silent_audio" not in verdict.values(), verdict
    if verdict:
        assert all("phase" in reason for reason in verdict.values()), verdict
        return
    af = run.tables["audio_features.audio_features"].set_index("clip_id").loc[_one(run, "antiphase").clip_id]
    assert af.rms_dbfs > -30.0, af.rms_dbfs     # each channel is at about -19 dBFS


def test_audio_short_is_quarantined_as_a_length_mismatch(run):
    verdict = run.verdict("audio_short")["audio_short/lrwp9a.mp4"]
    assert verdict and "length" in next(iter(verdict.values())), verdict
    assert not run.rows("audio_short").clip_id.isin(run.tables["align.alignments"].clip_id).any()


def test_jumpcut_is_one_speaker_refound_right_after_the_cut(run):
    verdict = run.verdict("jumpcut")["jumpcut/lbbc2a.mp4"]
    assert "ambiguous_speaker" not in verdict.values(), run.message("jumpcut", "faces")
    if verdict:
        assert "cut" in run.message("jumpcut", "faces"), verdict
        return
    lm = run.tables["faces.landmarks"]
    valid = lm[lm.clip_id == _one(run, "jumpcut").clip_id].sort_values("frame").valid.to_numpy()
    assert valid[:37].all() and valid[38:].all(), np.flatnonzero(~valid)   # the cut at 1.5 s = frame 37.5


def _phones_of(run: Run, case: str, word: str) -> list[str]:
    ph = run.tables["align.phones"]
    rows = ph[(ph.clip_id == _one(run, case).clip_id) & (ph.word == word)].sort_values("start")
    return list(rows.phone)


def test_numbers_reads_the_digit_as_a_word(run):
    assert _phones_of(run, "numbers", "2") == ["T", "UW"]
    words = run.tables["align.words"]
    assert list(words[words.clip_id == _one(run, "numbers").clip_id].sort_values("start").word) == \
        ["lay", "blue", "by", "c", "2", "again"]


def test_utf16_transcript_is_decoded_and_aligned(run):
    row = _one(run, "utf16")
    assert row.transcript == "lay blue at x four now"
    words = run.tables["align.words"]
    assert list(words[words.clip_id == row.clip_id].sort_values("start").word) == \
        ["lay", "blue", "at", "x", "four", "now"]
    assert not any(("\x00" in t or "\ufffd" in t) for t in run.clips.transcript.dropna())


def test_apostrophe_uses_the_user_dictionary(run):
    assert _phones_of(run, "apostrophe", "wit'") == ["W", "IH", "TH"]


def test_every_file_under_the_root_is_counted(run):
    videos = sorted(p.relative_to(run.media).as_posix() for p in run.media.rglob("*")
                    if p.is_file() and p.suffix != ".txt")
    counted = set(run.clips.source_path) | set(run.quarantine["ingest"].source_path)
    assert set(videos) <= counted and run.metrics["ingest"]["inputs"] == len(videos) == 24
    assert {Path(p).suffix for p in run.rows("other_ext").source_path} == {".m4v", ".3gp", ".ts"}
