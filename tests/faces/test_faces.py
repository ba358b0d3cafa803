"""Per-clip pipeline and stage on tiny clips made here: outputs, quarantine paths, accounting."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from headflow.faces.faces import process_clip
from headflow.faces.params import FacesParams
from headflow.manifest import Rejected
from headflow.manifest.schemas import schema_for



def reason(video, params=None) -> str:
    with pytest.raises(Rejected) as err:
        process_clip(video, params or FacesParams(), None)
    return err.value.reason_code


def test_one_face_gives_landmarks_every_frame_and_a_crop_video(tmp_path, portrait, clipkit):
    video = clipkit.write(tmp_path / "one.mp4", clipkit.moving(portrait, 30))
    r = process_clip(video, FacesParams(), tmp_path / "crop.mp4")
    assert r.valid.all() and r.landmarks.shape == (30, 68, 2) and r.transforms.shape == (30, 2, 3)
    assert r.summary["n_tracks"] == 1 and r.summary["detection_rate"] == 1.0
    # The face moves 1 px/frame to the right: so do its landmarks (nose tip, point 30).
    assert 20 < r.landmarks[-1, 30, 0] - r.landmarks[0, 30, 0] < 40
    from headflow.media import probe

    info = probe(tmp_path / "crop.mp4")
    assert (info.width, info.height, info.n_frames) == (256, 256, 30)


def test_no_face(tmp_path, clipkit):
    rng = np.random.default_rng(0)
    frames = [np.full((128, 160, 3), 90, np.uint8) + rng.integers(0, 20, (128, 160, 3), dtype=np.uint8)
              for _ in range(12)]
    assert reason(clipkit.write(tmp_path / "blank.mp4", frames)) == "no_face"


def test_two_equal_faces_are_ambiguous(tmp_path, portrait, clipkit):
    pair = [np.hstack([f, f]) for f in clipkit.moving(portrait, 20, canvas=(192, 224), dx=0)]
    assert reason(clipkit.write(tmp_path / "two.mp4", pair)) == "ambiguous_speaker"
    # With a lower bar on ambiguity (a configurable rule), one of them is chosen instead.
    params = FacesParams()
    params.speaker.ambiguity_ratio = 1.0
    params.speaker.rule = "largest"
    r = process_clip(tmp_path / "two.mp4", params, None)
    assert r.summary["n_tracks"] == 2


def test_unreadable_video(tmp_path):
    """Bytes that are no video, and a path with no file: `unreadable`, with the file named."""
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(Rejected) as err:
        process_clip(junk, FacesParams(), None)
    assert err.value.reason_code == "unreadable" and "junk.mp4" in err.value.message
    assert reason(tmp_path / "missing.mp4") == "unreadable"


def test_face_too_small(tmp_path, portrait, clipkit):
    video = clipkit.write(tmp_path / "small.mp4", clipkit.moving(portrait, 12))
    params = FacesParams(min_face_px=400.0)   # the face is ~90 px: below the bar
    assert reason(video, params) == "face_too_small"


def test_low_detection_rate(tmp_path, portrait, clipkit):
    frames = clipkit.moving(portrait, 40)
    frames[15:] = [np.full_like(frames[0], 128)] * 25   # the face is gone after frame 15
    assert reason(clipkit.write(tmp_path / "gone.mp4", frames)) == "low_detection_rate"


def test_face_out_of_frame(tmp_path, portrait, clipkit):
    # The portrait's face runs off the left edge: about a third of the jaw outside.
    frames = [np.ascontiguousarray(f[:, 70:]) for f in clipkit.moving(portrait, 16, canvas=(192, 224), dx=0)]
    params = FacesParams(out_of_frame_points=0.02)
    assert reason(clipkit.write(tmp_path / "edge.mp4", frames), params) == "face_out_of_frame"


def _reframed(portrait, n: int, shift: int, scale: float) -> list[np.ndarray]:
    """The portrait still on a 192x256 grey canvas, moved by `shift` px and zoomed by `scale` (a jump cut)."""
    import cv2

    M = np.float32([[scale, 0, 32 + shift], [0, scale, 0]])
    frame = cv2.warpAffine(portrait, M, (256, 192), borderMode=cv2.BORDER_CONSTANT, borderValue=(128, 128, 128))
    return [frame] * n


def test_jump_cut_is_one_speaker_refound_at_the_cut(tmp_path, portrait, clipkit):
    frames = clipkit.moving(portrait, 20, dx=0.5) + _reframed(portrait, 20, 60, 1.15)
    r = process_clip(clipkit.write(tmp_path / "jump.mp4", frames), FacesParams(), None)
    assert r.summary["shot_cuts"] == [20] and r.summary["speaker_tracks"] == 2
    assert r.valid.all() and r.detected[20]                    # detected on the cut frame itself
    # smoothing stops at the cut: the frame after it sits where the new framing puts the face
    jump = r.landmarks[20, 30, 0] - r.landmarks[19, 30, 0]
    assert jump > 40, jump


def test_a_different_person_after_a_cut_is_named_as_the_cut(tmp_path, portrait, clipkit):
    from headflow.demo.portraits import prepare_portrait

    other = prepare_portrait("grace_hopper", size=192).image
    frames = clipkit.moving(portrait, 20, dx=0.5) + _reframed(other, 20, 0, 1.0)
    video = clipkit.write(tmp_path / "swap.mp4", frames)
    with pytest.raises(Rejected) as err:
        process_clip(video, FacesParams(), None)
    assert err.value.reason_code == "shot_cut" and "frame 20" in err.value.message


def _clips_manifest(tmp_path, videos: dict[str, str]) -> None:
    schema = schema_for("clips")
    rows = [{**dict.fromkeys(schema.names), "clip_id": cid, "source_path": f"{cid}.mp4", "video_path": path,
             "fps": 25} for cid, path in videos.items()]
    pq.write_table(__import__("pyarrow").Table.from_pylist(rows, schema=schema), tmp_path / "clips.parquet")


def test_stage_accounting_and_manifests(tmp_path, portrait, monkeypatch, clipkit):
    from headflow.faces.stage import run_stage

    monkeypatch.chdir(tmp_path)
    one = clipkit.write(tmp_path / "one.mp4", clipkit.moving(portrait, 20))
    two = clipkit.write(tmp_path / "two.mp4", [np.hstack([f, f]) for f in clipkit.moving(portrait, 20, (192, 224), 0)])
    _clips_manifest(tmp_path, {"demo_one-0123456789": "one.mp4", "demo_two-abcdef0123": "two.mp4"})
    params = FacesParams(workers=1)
    metrics = run_stage(params, tmp_path / "clips.parquet", tmp_path / "faces", tmp_path / "faces.json", progress=False)
    assert metrics["inputs"] == 2 and metrics["accepted"] == 1 and metrics["quarantine_reasons"] == {"ambiguous_speaker": 1}
    faces = pd.read_parquet(tmp_path / "faces/faces.parquet")
    lm = pq.read_table(tmp_path / "faces/landmarks.parquet")
    q = pd.read_parquet(tmp_path / "faces/quarantine.parquet")
    assert list(faces.clip_id) == ["demo_one-0123456789"] and list(q.clip_id) == ["demo_two-abcdef0123"]
    assert lm.num_rows == 20 and lm.schema.field("landmarks").type == schema_for("landmarks").field("landmarks").type
    assert (tmp_path / "faces/crops/demo_one-0123456789.mp4").exists()
    assert not (tmp_path / "faces/crops/demo_two-abcdef0123.mp4").exists()
    row = lm.slice(0, 1).to_pylist()[0]
    assert len(row["landmarks"]) == 136 and len(row["crop_transform"]) == 6 and row["valid"]
    # A caller's map (Prefect shard tasks return lists) writes the same landmarks.parquet rows
    run_stage(params, tmp_path / "clips.parquet", tmp_path / "faces2", tmp_path / "faces2.json", progress=False,
              map_fn=lambda fn, jobs: list(map(fn, jobs)))
    assert pq.read_table(tmp_path / "faces2/landmarks.parquet").equals(lm)


def test_frame_table_writes_null_landmarks_for_invalid_frames():
    from headflow.faces.faces import ClipFaces
    from headflow.faces.stage import frame_table
    from headflow.validation import validate_manifest

    T = 4
    valid = np.array([True, False, True, True])
    lm = np.random.default_rng(0).uniform(0, 100, (T, 68, 2)).astype(np.float32)
    lm[~valid] = np.nan
    r = ClipFaces(summary={}, valid=valid, detected=np.array([True, False, False, False]),
                  score=np.array([1.5, np.nan, np.nan, np.nan], np.float32),
                  boxes=np.zeros((T, 4), np.float32), landmarks=lm, landmarks_raw=lm,
                  transforms=np.tile(np.eye(2, 3), (T, 1, 1)),
                  crop_outside=np.array([0.25, np.nan, 0.0, 0.5], np.float32))
    table = frame_table("demo_x-0123456789", r)
    rows = table.to_pylist()
    assert [row["crop_outside"] for row in rows] == [0.25, None, 0.0, 0.5]   # per frame; null where invalid
    assert rows[1]["landmarks"] is None and rows[1]["landmarks_raw"] is None and rows[1]["score"] is None
    assert rows[0]["landmarks"] == pytest.approx(lm[0].reshape(-1).tolist()) and rows[0]["score"] == 1.5
    assert rows[2]["crop_transform"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    validate_manifest(table.to_pandas(), "landmarks")            # the suite accepts it


def test_params_block_loads_and_rejects_bad_values(project_root):
    from headflow import params as P
    from headflow.config import ConfigError, from_dict

    faces = P.load("faces", project_root / "params.yaml")
    assert faces.detect.backend == "dlib_hog" and faces.crop.size == 256
    with pytest.raises(ConfigError, match="detect.evry"):
        from_dict(FacesParams, {"detect": {"evry": 3}}, "faces")
    with pytest.raises(ConfigError, match="faces.smooth.window: got 8; allowed: an odd number"):
        from_dict(FacesParams, {"smooth": {"window": 8}}, "faces")
