"""What a worker process runs per clip. Kept apart from stage.py so workers import only the
per-clip pipeline (numpy, OpenCV, dlib, decord), not pandas/great-expectations (~2 s per worker)."""

from __future__ import annotations

from dataclasses import dataclass

from headflow.faces.faces import ClipFaces, process_clip
from headflow.faces.params import FacesParams
from headflow.manifest.quarantine import Rejected


@dataclass(frozen=True)
class ClipJob:
    clip_id: str
    source_path: str
    video: str          # absolute path of the ingested video
    crop: str           # where the crop video goes
    mouth: str | None
    fps: float
    params: FacesParams


def faces_for_clip(job: ClipJob) -> tuple[str, ClipFaces | None, tuple[str, str] | None]:
    """Process one clip (in a worker process or a Prefect task); a bad clip is a result, not an error."""
    try:
        return job.clip_id, process_clip(job.video, job.params, job.crop, job.mouth, job.fps), None
    except Rejected as rej:
        return job.clip_id, None, (rej.reason_code, rej.message)


def init_worker() -> None:
    import cv2

    cv2.setNumThreads(1)   # one clip per process; OpenCV's own threads would fight the pool
