"""Reading a generated output and checking it against its contract row before it is scored.

A bad output is never a crash and never silently dropped: `load_output` raises `OutputRejected`
with one of `REASON_CODES`; the stage writes it to its quarantine and scores the row as a failure of
its system (`headflow.evaluate.aggregate`: a failure counts at the worst value of its clip).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from headflow.evaluate.baselines import Task
from headflow.evaluate.crops import ALIGNED_SIZE

REASON_CODES = (
    "missing_output",        # output_path does not exist
    "unreadable",            # cannot be opened or decoded
    "no_audio",              # a video without an audio track (the contract muxes the driving audio)
    "wrong_fps",             # manifest or container fps differs from the canonical 25
    "wrong_frame_count",     # decoded frames != frame_end - frame_start
    "wrong_frame_size",      # neither the source clip's frame size nor the 256x256 aligned crop
    "frame_range_mismatch",  # the output does not cover the task's scored frames
    "no_face",               # too few sampled crops show a face (dlib HOG)
    "not_in_evaluation_set", # the source / audio / driver clip is not an evaluation clip
    "task_mismatch",         # a reconstruction / dubbing output with another audio than the task's
    "duplicate_output",      # a second output of one system for the same task (the first, by clip_id, is scored)
    "not_generated",         # an evaluation task the system produced no output for
    "invalid_manifest",      # the generated.parquet breaks the contract's expectation suite
    "scoring_error",         # scoring raised (the message has the exception)
)
CANONICAL_FPS = 25.0


class OutputRejected(Exception):
    """A generated output that cannot be scored; `reason_code` is one of `REASON_CODES`."""

    def __init__(self, reason_code: str, message: str):
        if reason_code not in REASON_CODES:
            raise ValueError(f"unknown reason_code {reason_code!r}; expected one of {REASON_CODES}")
        super().__init__(f"{reason_code}: {message}")
        self.reason_code, self.message = reason_code, message

    def __reduce__(self):
        return (type(self), (self.reason_code, self.message))


def _decode_video(path: Path, fps_tolerance: float) -> list[np.ndarray]:
    from headflow.media import MediaError, probe, read_frames

    try:
        info = probe(path)
    except MediaError as err:
        raise OutputRejected("unreadable", err.message) from None
    if not info.has_video:
        raise OutputRejected("unreadable", f"{path}: no video stream")
    if not info.has_audio:
        raise OutputRejected("no_audio", f"{path}: no audio stream; the contract muxes the driving audio "
                             "into every generated video")
    if info.fps is None or abs(info.fps - CANONICAL_FPS) > fps_tolerance:
        raise OutputRejected("wrong_fps", f"{path}: {info.fps} fps in the container, expected {CANONICAL_FPS:g}")
    try:
        return list(read_frames(path))
    except MediaError as err:
        raise OutputRejected("unreadable", err.message) from None
    except Exception as err:  # noqa: BLE001 - decord raises several types on corrupt streams
        raise OutputRejected("unreadable", f"{path}: decoding failed ({type(err).__name__}: {err})") from None


def _load_images(path: Path) -> list[np.ndarray]:
    try:
        with np.load(path) as z:
            frames = z["frames"]
    except Exception as err:  # noqa: BLE001 - any failure to read the array means unreadable
        raise OutputRejected("unreadable", f"{path}: not an npz with a `frames` array ({type(err).__name__}: {err})") from None
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise OutputRejected("unreadable", f"{path}: `frames` must be (T, H, W, 3) uint8, got {frames.dtype} {frames.shape}")
    return list(frames)


def load_output(row, task: Task, frame_hw: tuple[int, int], root: Path = Path("."),
                fps_tolerance: float = 0.01) -> tuple[Callable[[int], np.ndarray], str]:
    """A generated output as a function of the absolute source frame index, and its geometry.

    Args:
        row: its generated.parquet row (attribute access: `output_path`, `output_kind`, `fps`,
            `frame_start`, `frame_end`).
        task: the task it is scored on.
        frame_hw: (H, W) of the task's real frame clip.
        root: the project root (`output_path` is relative to it).
        fps_tolerance: largest accepted |fps - 25|.

    Returns:
        (frame_fn, geometry): `frame_fn(f)` gives the output's frame showing source frame f;
        geometry "frame" (the real clip's frame size) or "aligned" (256x256 aligned crops).

    Raises:
        OutputRejected: with the reason code (see `REASON_CODES`) and what was found.
    """
    path = Path(root) / row.output_path
    if not path.exists():
        raise OutputRejected("missing_output", f"{row.output_path}: not found (did the generate stage run?)")
    if abs(float(row.fps) - CANONICAL_FPS) > fps_tolerance:
        raise OutputRejected("wrong_fps", f"{row.output_path}: manifest fps {row.fps}, expected {CANONICAL_FPS:g}")
    frames = _decode_video(path, fps_tolerance) if row.output_kind == "video" else _load_images(path)
    expected = int(row.frame_end) - int(row.frame_start)
    if len(frames) != expected:
        raise OutputRejected("wrong_frame_count", f"{row.output_path}: {len(frames)} frames, but frame_start "
                             f"{row.frame_start} .. frame_end {row.frame_end} promises {expected}")
    hw = frames[0].shape[:2]
    if hw == tuple(frame_hw):
        geometry = "frame"
    elif hw == (ALIGNED_SIZE, ALIGNED_SIZE):
        geometry = "aligned"
    else:
        raise OutputRejected("wrong_frame_size", f"{row.output_path}: frames are {hw[1]}x{hw[0]}; expected the "
                             f"source clip's {frame_hw[1]}x{frame_hw[0]} or the {ALIGNED_SIZE}x{ALIGNED_SIZE} aligned crop")
    if int(row.frame_start) > task.frame_start or int(row.frame_end) < task.frame_end:
        raise OutputRejected("frame_range_mismatch", f"{row.output_path}: covers frames [{row.frame_start}, "
                             f"{row.frame_end}); every system is scored on [{task.frame_start}, {task.frame_end})")
    start = int(row.frame_start)
    return (lambda f: frames[f - start]), geometry
