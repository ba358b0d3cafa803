"""A tiny project for the evaluate stage: real faces (demo portraits) moved and 'speaking', real manifests.

Each clip is a 192x192 portrait (scikit-image's astronaut or matplotlib's Grace Hopper, as the demo
corpus uses them) shifted by a pixel or two per frame, with a dark mouth ellipse whose height follows
the loudness of the clip's noise-burst audio. Faces geometry (boxes, landmarks, aligned-crop
transforms) is the portrait's dlib landmarks moved with the frame, written through the faces stage's
own `frame_table`, with the 256x256 aligned crop videos the faces stage writes (so the shards stage
runs on it too); mels through `headflow.audio.mel`. The sync networks are untrained experts of the
real class saved by `save_expert` (plumbing only: their numbers mean nothing).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

SIZE = 192
SR = 16000


def loudness(n_frames: int, seed: int) -> np.ndarray:
    """Per-frame loudness in [0, 1]: smooth bursts ~4 per second."""
    rng = np.random.default_rng(seed)
    knots = rng.uniform(0, 1, n_frames // 6 + 3) ** 2
    return np.interp(np.arange(n_frames) / 6, np.arange(len(knots)), knots)


def clip_media(portrait: str, n_frames: int, seed: int) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(frames, landmarks (T, 68, 2), audio samples) of one synthetic talking clip."""
    from headflow.demo.portraits import prepare_portrait

    p = prepare_portrait(portrait, size=SIZE, face_fraction=0.5)
    level = loudness(n_frames, seed)
    rng = np.random.default_rng(seed)
    frames, marks = [], []
    for t in range(n_frames):
        dx, dy = 1.5 * np.sin(0.3 * t + seed), 1.0 * np.cos(0.2 * t)
        m = np.array([[1, 0, dx], [0, 1, dy]], np.float64)
        img = cv2.warpAffine(p.image, m, (SIZE, SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        lm = p.landmarks + np.array([dx, dy], np.float32)
        centre = lm[60:68].mean(0)
        width = np.linalg.norm(lm[54] - lm[48]) / 2
        cv2.ellipse(img, (int(centre[0]), int(centre[1])), (int(width * 0.8), int(1 + 6 * level[t])), 0, 0, 360,
                    (40, 20, 20), -1)
        frames.append(img)
        marks.append(lm)
    samples = int(n_frames / 25 * SR)
    env = np.repeat(level, SR // 25)[:samples]
    audio = (0.3 * env * rng.normal(size=samples)).astype(np.float32)
    return frames, np.stack(marks), audio


def build_project(root: Path, clips: dict[str, tuple[str, str, int, int]]) -> None:
    """Write ingest/faces/audio_features manifests, media, aligned crops, mels and two untrained experts under `root`.

    Args:
        clips: clip_id -> (portrait, split, n_frames, seed).
    """
    import pyarrow as pa
    import soundfile as sf
    import torch

    from headflow.evaluate.crops import cut

    from headflow.audio.mel import mel_spectrogram
    from headflow.faces.crops import align_transform
    from headflow.faces.faces import ClipFaces
    from headflow.faces.stage import frame_table
    from headflow.faces.track import box_from_landmarks
    from headflow.manifest import write_manifest
    from headflow.media import encode_video
    from headflow.nn.expert import ExpertConfig, SyncExpert
    from headflow.sync.train import save_expert

    rows, faces, audio, tables = [], [], [], []
    for clip_id, (portrait, split, n, seed) in clips.items():
        frames, lm, samples = clip_media(portrait, n, seed)
        video = f"data/interim/ingest/media/{clip_id}.mp4"
        wav = f"data/interim/ingest/media/{clip_id}.wav"
        (root / video).parent.mkdir(parents=True, exist_ok=True)
        encode_video(frames, root / video, crf=12, preset="ultrafast", threads=1)
        sf.write(root / wav, samples, SR, subtype="PCM_16")
        mel = f"data/interim/audio_features/mel/{clip_id}.npy"
        (root / mel).parent.mkdir(parents=True, exist_ok=True)
        np.save(root / mel, mel_spectrogram(samples))
        rows.append({"clip_id": clip_id, "source_path": f"{clip_id}.mp4", "video_path": video, "audio_path": wav,
                     "fps": 25, "n_frames": n, "speaker_id": portrait, "split": split, "width": SIZE, "height": SIZE})
        crop = f"data/interim/faces/crops/{clip_id}.mp4"
        audio.append({"clip_id": clip_id, "mel_path": mel})
        valid = np.ones(n, bool)
        # the detector-convention box of the portrait, moved with the landmarks
        from headflow.faces.dlib_backend import detect_faces
        from headflow.faces.track import box_relation

        relation = box_relation(detect_faces(frames[0])[0][:4], lm[0])
        boxes = np.array([box_from_landmarks(x, relation) for x in lm], np.float32)
        transforms = np.stack([align_transform(x) for x in lm])
        (root / crop).parent.mkdir(parents=True, exist_ok=True)
        encode_video([cut(f, m, 256) for f, m in zip(frames, transforms)], root / crop, crf=18, preset="ultrafast",
                     threads=1)
        faces.append({"clip_id": clip_id, "n_frames": n, "crop_path": crop})
        tables.append(frame_table(clip_id, ClipFaces({}, valid, valid, np.ones(n, np.float32), boxes, lm, lm,
                                                     transforms)))
    write_manifest(rows, root / "data/interim/ingest/clips.parquet", "clips")
    write_manifest(faces, root / "data/interim/faces/faces.parquet", "faces")
    write_manifest(pa.concat_tables(tables), root / "data/interim/faces/landmarks.parquet", "landmarks")
    write_manifest(audio, root / "data/interim/audio_features/audio_features.parquet", "audio_features")
    for name, seed, face_input in (("expert", 0, "gray_motion_norm"), ("judge", 1, "gray_norm")):
        cfg = ExpertConfig(width=0.125, depth=1, face_input=face_input, face_centre="clip", audio_centre="clip")
        torch.manual_seed(seed)
        save_expert(SyncExpert(cfg), root / f"data/models/{name}/last.pt")


def read_clip(root: Path, clip_id: str) -> list[np.ndarray]:
    """The fixture clip's decoded frames."""
    from headflow.media import read_frames

    return list(read_frames(root / f"data/interim/ingest/media/{clip_id}.mp4"))


CLIPS = {
    "astro_a-000000000a": ("astronaut", "test", 24, 0),
    "astro_b-000000000b": ("astronaut", "test", 24, 1),
    "hopper_a-000000000c": ("grace_hopper", "test", 24, 2),
    "hopper_t-000000000d": ("grace_hopper", "train", 20, 3),
}
TEST_CLIPS = sorted(c for c, v in CLIPS.items() if v[1] == "test")


def tiny_params(**kw):
    """EvaluateParams shrunk for tests: 2 sampled frames, a +-3 frame sync scan, one process."""
    from headflow.evaluate.params import EvaluateParams

    base = dict(sample_frames=2, max_offset=3, min_pairs=3, workers=1, n_boot=200, report_clips=2)
    base.update(kw)
    return EvaluateParams(**base)


def fixture_catalog(root: Path = Path(".")):
    """The project's catalog plus a `generate_copycat` stage before `evaluate`: what registering a
    family's generate stage adds (`write_generated_outputs` writes that stage's manifest)."""
    from headflow.catalog import STAGES, Catalog, StageOutputs, evaluate_stage

    # the real families' generate stages are left out: this project has only the fake family's outputs
    earlier = {name: s for name, s in STAGES.items() if name != "evaluate" and not name.startswith("generate_")}
    earlier["generate_copycat"] = StageOutputs("generate_copycat", "data/interim/generate_copycat", ("generated",))
    return Catalog(root, {**earlier, "evaluate": evaluate_stage(earlier)})


def copy_project(src: Path, dst: Path) -> Path:
    """A copy of the fixture project without the evaluate outputs (each stage run gets its own)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("evaluate", "reports", "generate_*"))
    return dst


def write_generated_outputs(root: Path) -> dict[str, str]:
    """Generated outputs of two fake families under `root`, good and bad; returns {output: expected verdict}.

    copycat: reconstruction of astro_a = its exact frames (an identical video), of hopper_a = exact
    256x256 aligned crops (the aligned geometry), of astro_b = a video without audio; dubbing: a video
    one frame short, a file of garbage bytes, a missing file. blank: a grey video with audio (no face);
    its other reconstruction tasks are not generated at all.
    """
    import numpy as np
    import pandas as pd
    import soundfile as sf

    from headflow.evaluate.crops import cut
    from headflow.manifest.generated import dubbing_pairs, mark_synthetic, write_generated
    from headflow.media import encode_video

    lm = pd.read_parquet(root / "data/interim/faces/landmarks.parquet")
    pairs = dubbing_pairs(TEST_CLIPS)
    out = root / "data/interim/generate_copycat"
    out.mkdir(parents=True, exist_ok=True)
    rows, verdicts = [], {}

    def row(family, cid, src, kind, name, n, protocol="reconstruction", audio=None):
        return dict(clip_id=cid, family=family, variant="default", seed=0, protocol=protocol, source_clip=src,
                    audio_clip=audio or src, driver_clip=None, style_clip=None, references=[0], output_kind=kind,
                    output_path=f"data/interim/generate_copycat/{name}", fps=25.0, frame_start=0, frame_end=n,
                    checkpoint_sha256="ab" * 32)

    a, b, h = TEST_CLIPS        # astro_a, astro_b, hopper_a
    fa, fb, fh = (read_clip(root, c) for c in (a, b, h))
    wav = {c: sf.read(root / f"data/interim/ingest/media/{c}.wav", dtype="float32")[0] for c in TEST_CLIPS}
    np.savez(out / "a_exact.npz", frames=np.stack(fa))
    rows.append(row("copycat", "rec_a", a, "images", "a_exact.npz", len(fa)))
    verdicts["rec_a"] = "ok"
    m256 = np.stack(lm[lm.clip_id == h].sort_values("frame").crop_transform.to_numpy()).reshape(-1, 2, 3)
    np.savez(out / "h_aligned.npz", frames=np.stack([cut(f, m, 256) for f, m in zip(fh, m256)]))
    rows.append(row("copycat", "rec_h", h, "images", "h_aligned.npz", len(fh)))
    verdicts["rec_h"] = "ok"
    encode_video(fb, out / "b_silent.mp4", crf=12, preset="ultrafast", threads=1)
    rows.append(row("copycat", "rec_b", b, "video", "b_silent.mp4", len(fb)))
    verdicts["rec_b"] = "no_audio"
    encode_video(fa[:-1], out / "a_short.mp4", crf=12, preset="ultrafast", threads=1, audio=wav[pairs[a]])
    mark_synthetic(out / "a_short.mp4", "copycat", "ab" * 32, [a, pairs[a]])
    rows.append(row("copycat", "dub_a", a, "video", "a_short.mp4", len(fa), "dubbing", pairs[a]))
    verdicts["dub_a"] = "wrong_frame_count"
    (out / "b_garbage.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    rows.append(row("copycat", "dub_b", b, "video", "b_garbage.mp4", len(fb), "dubbing", pairs[b]))
    verdicts["dub_b"] = "unreadable"
    rows.append(row("copycat", "dub_h", h, "video", "h_missing.mp4", len(fh), "dubbing", pairs[h]))
    verdicts["dub_h"] = "missing_output"
    grey = [np.full_like(fa[0], 128) for _ in fa]
    encode_video(grey, out / "blank_a.mp4", crf=12, preset="ultrafast", threads=1, audio=wav[a])
    rows.append(row("blank", "rec_a", a, "video", "blank_a.mp4", len(fa)))
    verdicts["blank/rec_a"] = "no_face"
    write_generated(rows, out / "generated.parquet")
    return verdicts
