"""Build the demo corpus: talking portraits with exact ground truth, plus deliberately bad inputs.

Layout under the output folder (`data/raw/demo` by default):
    <identity>/<identity>_<NN>.mp4        good clip: H.264 25 fps + AAC 16 kHz mono
    <identity>/<identity>_<NN>.txt        transcript (ingest picks it up like any folder source)
    <identity>/<identity>_<NN>.truth.json transcript, word and phone intervals, voice, speaking style
                                          (name and factors), av offset (0)
    <identity>/<identity>_<NN>.truth.npz  per-frame landmarks (T, 68, 2), pose (T, 6), mouth (styled), blink
    bad/...                               inputs every run must quarantine (see BAD_INPUTS)
    corpus.parquet                        one row per file written, with the expected verdict
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pandas as pd

from headflow.demo.animation import (POSE_COLUMNS, HeadMotion, blink_track, head_pose_track,
                                     mouth_track)
from headflow.demo.params import DemoCorpusParams, StyleParams
from headflow.demo.portraits import prepare_portrait
from headflow.demo.render import PortraitAnimator
from headflow.speech.espeak import Utterance, synthesize
from headflow.manifest import atomic_output, write_json
from headflow.media import encode_video
from headflow.parallel import map_jobs

SENTENCES_FILE = Path(__file__).resolve().parents[1] / "assets" / "harvard_sentences.txt"

# file (relative to the corpus root) -> (stage that must reject it, reason code)
BAD_INPUTS: dict[str, tuple[str, str]] = {
    "bad/no_face.mp4": ("ingest", "no_face"),
    "bad/two_faces.mp4": ("faces", "ambiguous_speaker"),
    "bad/no_audio.mp4": ("ingest", "no_audio_stream"),
    "bad/truncated.mp4": ("ingest", "unreadable"),
    "bad/audio_only.mp4": ("ingest", "no_video_stream"),
    "bad/too_short.mp4": ("ingest", "too_short"),
    "bad/too_long.mp4": ("ingest", "too_long"),
}


def load_sentences() -> list[str]:
    lines = SENTENCES_FILE.read_text().splitlines()
    return [s.strip() for s in lines if s.strip() and not s.startswith("#")]


@dataclass(frozen=True)
class ClipSpec:
    index: int
    identity: str
    sentences: tuple[str, ...]   # spoken together when they fit in max_duration_s, else the first
    voice: str
    rate_wpm: int
    relpath: str
    seed: int
    style: str = "neutral"       # name of one of params.styles


STYLE_STREAM = 0x5791E   # second seed word of the style rotation's generator (independent of the clip draws)


def style_cycle(styles: list[StyleParams]) -> list[str]:
    """One cycle of style names, each `weight` times, spread so equal names are not neighbours.

    The names sorted by weight (stable, so ties keep the params order) fill the even positions of
    the cycle, then the odd ones. While no style has more than half the total weight, no two
    cyclically adjacent entries are equal, so every identity with 2+ clips speaks in 2+ styles.
    Example: weights neutral 3, exaggerated 1, restrained 1, smiling 1 ->
    [neutral, exaggerated, neutral, restrained, neutral, smiling].
    """
    pool = [s.name for s in sorted(styles, key=lambda s: -s.weight) for _ in range(s.weight)]
    slots = list(range(0, len(pool), 2)) + list(range(1, len(pool), 2))
    cycle = [""] * len(pool)
    for slot, name in zip(slots, pool):
        cycle[slot] = name
    return cycle


def assign_styles(params: DemoCorpusParams) -> list[str]:
    """The style of each clip index (length n_clips): identities walk `style_cycle` round-robin.

    Clip i is identity i % len(identities)'s n-th clip (n = i // len(identities)); it takes
    cycle[(offset + n) % len(cycle)], where each identity's offset is drawn from a generator of its
    own, seeded with (seed, STYLE_STREAM), so the clip draws of plan_clips stay as they were before
    styles existed.
    """
    cycle = style_cycle(params.styles)
    offsets = np.random.default_rng([params.seed, STYLE_STREAM]).integers(len(cycle), size=len(params.identities))
    k = len(params.identities)
    return [cycle[(int(offsets[i % k]) + i // k) % len(cycle)] for i in range(params.n_clips)]


def plan_clips(params: DemoCorpusParams) -> list[ClipSpec]:
    """Which identity says which sentence with which voice, rate and style: a pure function of the params."""
    styles = assign_styles(params)
    rng = np.random.default_rng(params.seed)
    sentences = load_sentences()
    order = rng.permutation(len(sentences))
    specs = []
    for i in range(params.n_clips):
        k = i % len(params.identities)
        identity = params.identities[k]
        n = i // len(params.identities)
        first = sentences[order[i % len(sentences)]]
        # About a third of the clips say two sentences, for a spread of 3-6 s durations.
        pair = (first, sentences[order[(i + params.n_clips) % len(sentences)]]) if rng.random() < 0.35 else (first,)
        specs.append(ClipSpec(
            index=i, identity=identity, sentences=pair,
            voice=params.voices[k % len(params.voices)], rate_wpm=int(rng.choice(params.rates_wpm)),
            relpath=f"{identity}/{identity}_{n:02d}.mp4", seed=int(rng.integers(2**31)), style=styles[i]))
    return specs


def _pad_audio(utt: Utterance, params: DemoCorpusParams, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """Pad the utterance with silence to >= min_duration and a whole number of frames."""
    sr, fps = params.sample_rate, params.fps
    n_frames = int(np.ceil(max(utt.duration, params.min_duration_s) * fps - 1e-9))
    n_samples = n_frames * sr // fps
    audio = np.zeros(n_samples, np.float32)
    audio[: len(utt.audio)] = utt.audio[:n_samples]
    # A faint noise floor (-66 dBFS): real recordings are never digitally silent.
    audio += rng.normal(0, 5e-4, n_samples).astype(np.float32)
    return np.clip(audio, -1, 1), n_frames


def _animate(identity: str, phones, n_frames: int, params: DemoCorpusParams, rng: np.random.Generator,
             style: StyleParams | None = None):
    """Ground-truth tracks and the frames of one talking portrait (style None: the neutral one)."""
    style = style or StyleParams()
    anim = PortraitAnimator(prepare_portrait(identity, params.frame_size))
    hm, k = params.head_motion, style.head_motion
    motion = HeadMotion(hm.yaw_deg * k, hm.pitch_deg * k, hm.roll_deg * k, hm.shift_frac * k, hm.scale_frac * k)
    mouth = mouth_track(phones, n_frames, params.fps, gain=float(rng.uniform(0.85, 1.15)),
                        articulation=style.articulation, spread_offset=style.lip_spread)
    blink = blink_track(n_frames, params.fps, rng)
    pose = head_pose_track(n_frames, params.fps, rng, params.frame_size, motion)
    landmarks = np.zeros((n_frames, 68, 2), np.float32)
    frames = []
    for f in range(n_frames):
        lm, ring = anim.landmarks(mouth[f], blink[f], pose[f], lip_raise=style.lip_raise)
        landmarks[f] = lm
        frames.append(anim.render(lm, ring))
    return frames, landmarks, pose, mouth, blink


def render_clip(spec: ClipSpec, params: DemoCorpusParams, out_dir: Path) -> dict:
    """Render one good clip and its ground truth; returns its corpus.parquet row."""
    rng = np.random.default_rng(spec.seed)
    lead = float(rng.uniform(0.25, 0.5))
    for n_sentences in range(len(spec.sentences), 0, -1):
        sentence = " ".join(spec.sentences[:n_sentences])
        utt = synthesize(sentence, voice=spec.voice, rate_wpm=spec.rate_wpm, sample_rate=params.sample_rate,
                         lead_silence=lead, tail_silence=0.3)
        if utt.duration <= params.max_duration_s:
            break
    else:
        raise ValueError(f"{spec.relpath}: '{sentence}' lasts {utt.duration:.2f} s > max_duration_s "
                         f"{params.max_duration_s} even alone; raise max_duration_s or the rates")
    audio, n_frames = _pad_audio(utt, params, rng)
    duration = n_frames / params.fps
    phones = list(utt.phones)
    if phones and phones[-1].end < duration:   # the padding is silence too
        last = phones[-1]
        phones[-1] = type(last)(last.start, duration, last.label) if last.label == "SIL" else last
        if last.label != "SIL":
            phones.append(type(last)(last.end, duration, "SIL"))
    styles = {s.name: s for s in params.styles}
    if spec.style not in styles:
        raise ValueError(f"{spec.relpath}: style '{spec.style}' is not in demo_corpus.styles "
                         f"({', '.join(styles)}); plan clips with plan_clips(params)")
    style = styles[spec.style]
    frames, landmarks, pose, mouth, blink = _animate(spec.identity, phones, n_frames, params, rng, style)
    video = out_dir / spec.relpath
    video.parent.mkdir(parents=True, exist_ok=True)
    encode_video(frames, video, fps=params.fps, crf=params.crf, audio=audio, sample_rate=params.sample_rate)
    stem = video.with_suffix("")
    with atomic_output(stem.with_suffix(".txt")) as tmp:
        tmp.write_text(sentence + "\n")
    with atomic_output(stem.with_suffix(".truth.npz")) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, landmarks=landmarks, pose=pose.astype(np.float32), mouth=mouth, blink=blink)
    write_json({
        "transcript": sentence, "identity": spec.identity, "voice": spec.voice, "rate_wpm": spec.rate_wpm,
        "fps": params.fps, "sample_rate": params.sample_rate, "n_frames": n_frames, "duration_s": duration,
        "av_offset_frames": 0, "style": style.name,
        "style_params": {"articulation": style.articulation, "lip_spread": style.lip_spread,
                         "lip_raise": style.lip_raise, "head_motion": style.head_motion},
        "words": [{"word": w.label, "start": round(w.start, 6), "end": round(w.end, 6)} for w in utt.words],
        "phones": [{"phone": p.label, "start": round(p.start, 6), "end": round(p.end, 6)} for p in phones],
        "pose_columns": list(POSE_COLUMNS),
        "mouth_columns": ["open", "spread", "round"],
        "landmarks": "68-point iBUG order, source-frame pixels, sampled at frame centres",
    }, stem.with_suffix(".truth.json"))
    return {"source_path": spec.relpath, "kind": "good", "identity": spec.identity, "sentence": sentence,
            "voice": spec.voice, "rate_wpm": spec.rate_wpm, "style": style.name, "n_frames": n_frames,
            "duration_s": duration,
            "expected_stage": None, "expected_reason": None,
            "truth_path": stem.with_suffix(".truth.npz").relative_to(out_dir).as_posix()}


def _render_clip_job(args: tuple) -> dict:
    return render_clip(*args)


def _ffmpeg(args: list[str]) -> None:
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"ffmpeg failed ({' '.join(args[-1:])}): {proc.stderr[-500:]}")


def _bitexact() -> list[str]:
    return ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact", "-map_metadata", "-1"]


def build_bad_inputs(params: DemoCorpusParams, out_dir: Path, good: list[dict]) -> list[dict]:
    """Write the deliberately bad inputs; each row says which stage must reject it and why."""
    rng = np.random.default_rng(params.seed + 1)
    bad = out_dir / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    sr, fps, size = params.sample_rate, params.fps, params.frame_size
    donor = out_dir / good[0]["source_path"]
    utt = synthesize(load_sentences()[0], voice=params.voices[0], rate_wpm=params.rates_wpm[0], sample_rate=sr)
    speech, n = _pad_audio(utt, params, rng)
    rows = []

    def row(rel: str, identity: str, n_frames: int, sentence: str | None = None,
            expected: tuple[str, str] | None = None) -> dict:
        stage, reason = expected or BAD_INPUTS[rel]
        return {"source_path": rel, "kind": "bad", "identity": identity, "sentence": sentence, "voice": None,
                "rate_wpm": None, "style": None, "n_frames": n_frames, "duration_s": n_frames / fps,
                "expected_stage": stage, "expected_reason": reason, "truth_path": None}

    # No face: a slow pan over a photo with no people in it, with speech.
    import skimage.data

    scene = cv2.resize(skimage.data.coffee(), (int(size * 1.6), int(size * 1.2)), interpolation=cv2.INTER_AREA)
    pan = [np.ascontiguousarray(scene[(i // 4) % (scene.shape[0] - size):][:size, i % (scene.shape[1] - size):][:, :size])
           for i in range(n)]
    encode_video(pan, bad / "no_face.mp4", fps=fps, crf=params.crf, audio=speech, sample_rate=sr)
    rows.append(row("bad/no_face.mp4", "coffee", n, load_sentences()[0]))
    # Two faces side by side, both talking: nobody can say which one is the speaker.
    left = _animate(params.identities[0], utt.phones, n, params, rng)[0]
    right = _animate(params.identities[1 % len(params.identities)], utt.phones, n, params, rng)[0]
    encode_video([np.concatenate([a, b], 1) for a, b in zip(left, right)], bad / "two_faces.mp4", fps=fps,
                 crf=params.crf, audio=speech, sample_rate=sr)
    rows.append(row("bad/two_faces.mp4", f"{params.identities[0]}+{params.identities[1 % len(params.identities)]}",
                    n, load_sentences()[0]))
    # No audio track: a good clip's video stream alone.
    _ffmpeg(["-i", str(donor), "-map", "0:v:0", "-c", "copy", "-an", *_bitexact(), str(bad / "no_audio.mp4")])
    rows.append(row("bad/no_audio.mp4", good[0]["identity"], good[0]["n_frames"]))
    # Truncated: the first 40% of a good clip's bytes (an interrupted download).
    data = donor.read_bytes()
    (bad / "truncated.mp4").write_bytes(data[: int(len(data) * 0.4)])
    rows.append(row("bad/truncated.mp4", good[0]["identity"], good[0]["n_frames"]))
    # Audio only, in an mp4 container.
    wav = bad / ".speech.wav"
    import soundfile as sf

    sf.write(wav, speech, sr, subtype="PCM_16")
    _ffmpeg(["-i", str(wav), "-c:a", "aac", "-b:a", "96k", *_bitexact(), str(bad / "audio_only.mp4")])
    wav.unlink()
    rows.append(row("bad/audio_only.mp4", "none", 0))
    # Too short: 0.6 s of a talking portrait.
    short = int(0.6 * fps)
    encode_video(left[:short], bad / "too_short.mp4", fps=fps, crf=params.crf, audio=speech[: short * sr // fps],
                 sample_rate=sr)
    rows.append(row("bad/too_short.mp4", params.identities[0], short))
    # Too long: 16 s (speech looped over a near-still portrait); cheap to encode.
    long_n = 16 * fps
    still = [left[i % 10] for i in range(long_n)]
    encode_video(still, bad / "too_long.mp4", fps=fps, crf=params.crf, audio=np.resize(speech, long_n * sr // fps),
                 sample_rate=sr)
    rows.append(row("bad/too_long.mp4", params.identities[0], long_n))
    # A byte-identical copy of a good clip, next to it (ingest keeps the first by path).
    original = good[1 % len(good)]
    copy_rel = original["source_path"].replace(".mp4", "_copy.mp4")
    shutil.copyfile(out_dir / original["source_path"], out_dir / copy_rel)
    rows.append(row(copy_rel, original["identity"], original["n_frames"], original["sentence"],
                    expected=("ingest", "duplicate_content")))
    return rows


def build_corpus(params: DemoCorpusParams, out_dir: Path, progress: bool = True,
                 map_fn: Callable | None = None) -> pd.DataFrame:
    """Render the whole corpus into `out_dir` (cleared first) and return its index (corpus.parquet rows).

    Args:
        map_fn: optional `map(fn, iterable)` replacement (Prefect tasks); default: a process pool.
    """
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    specs = plan_clips(params)
    jobs = [(s, params, out_dir) for s in specs]
    good = map_jobs(_render_clip_job, jobs, params.workers, map_fn, desc="demo clips", progress=progress)
    rows = good + (build_bad_inputs(params, out_dir, good) if params.bad_inputs else [])
    return pd.DataFrame(rows).sort_values("source_path", ignore_index=True)
