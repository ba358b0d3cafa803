"""Reading shards: `read_clip` joins a clip's shard and its label sidecar on demand; `accepted_clips`
applies sync_check's decisions.

Every pixel view comes with its geometry (`ImageView`): pixels (T, H, W, 3) uint8, the per-frame 2x3
transform from source-frame pixels to view pixels and the 68 landmarks in view pixels. Frames where
`valid` is False have zero pixels and NaN transforms and landmarks.

    from headflow.shards import accepted_clips, read_clip
    clips = accepted_clips()                      # shards sync_check lets through (keep + shift)
    shard = read_clip(clips.clip_id[0], views=("crop256", "mouth", "mel", "phones"), decisions=clips)
    shard.crop256.pixels, shard.mouth.transform, shard.mel, shard.phones.phone_index

Only the arrays behind the requested views are decompressed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from headflow.shards.geometry import CROP_SIZE, cut_regions, resize_transform, translate
from headflow.shards.store import ShardFile

SHARDS_DIR = Path("data/interim/shards")
LABELS_DIR = Path("data/interim/shard_labels")
SYNC_CLIPS = Path("data/interim/sync_check/clips.parquet")

PIXEL_VIEWS = ("face96", "crop256", "mouth", "eyes")
"""Views cut by the `shards` stage."""
REGION_VIEWS = ("mouth", "eyes")
"""Views that are boxes inside crop256 (`<name>_box` in the file)."""
LABEL_VIEWS = ("nmfc", "phones", "expressions")
"""Views from the `shard_labels` sidecar."""
VIEWS = (*PIXEL_VIEWS, "mel", *LABEL_VIEWS)


@dataclass(frozen=True)
class ImageView:
    """A crop of every frame with its geometry."""

    pixels: np.ndarray                # (T, H, W, 3) uint8 RGB; zeros where not valid
    transform: np.ndarray             # (T, 2, 3) float64 source pixels -> view pixels; NaN where not valid
    landmarks: np.ndarray             # (T, 68, 2) float32 in view pixels; NaN where not valid
    mask: np.ndarray | None = None
    """(T, H, W) bool. nmfc: pixels the face mesh covers. crop256 and its regions (mouth, eyes): pixels
    sampled inside the source frame (False: the edge smear of a tight source, to leave out of losses;
    None for shards written before the mask existed)."""

    @property
    def size(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[2])


@dataclass(frozen=True)
class PhoneLabels:
    """align's per-frame labels (frame t covers [t/fps, (t+1)/fps), labelled at its centre)."""

    phone_index: np.ndarray           # (T,) int16 headflow.align.phones.PHONE_INDEX (SIL = 0)
    styletalk_index: np.ndarray       # (T,) int16 StyleTalk phindex (SIL = 31)
    valid: np.ndarray                 # (T,) bool frames the alignment reaches


@dataclass(frozen=True)
class Expressions:
    """fit3dmm's per-frame expression coefficients and head pose (expressions.parquet)."""

    exp: np.ndarray                   # (T, K) float32 in the model's native basis
    angles: np.ndarray                # (T, 3) float32 yaw, pitch, roll degrees
    translation: np.ndarray           # (T, 2) float32 source-frame pixels
    scale: np.ndarray                 # (T,) float32 pixels per model unit
    valid: np.ndarray                 # (T,) bool frames with observed landmarks
    model: str                        # the morphable model (MorphableModel.name)


class ClipNotAccepted(LookupError):
    """The clip is not among those sync_check lets through."""


@dataclass
class ClipShard:
    """One clip's arrays. Views asked for are attributes (`shard.face96`, `shard.mel`, ...); others raise."""

    clip_id: str
    speaker: str
    split: str
    fps: float
    valid: np.ndarray                 # (T,) bool frames with valid landmarks
    audio_shift_frames: int = 0       # sync_check's correction already applied to `mel` (0: none)
    views: dict[str, object] = field(default_factory=dict)

    @property
    def n_frames(self) -> int:
        return len(self.valid)

    def __getattr__(self, name: str):
        if name.startswith("__") or name == "views":
            raise AttributeError(name)
        if name in self.views:
            return self.views[name]
        if name in VIEWS:
            raise AttributeError(f"clip {self.clip_id}: view {name!r} was not loaded; pass it in read_clip(views=...)")
        raise AttributeError(f"ClipShard has no attribute {name!r}; views are {VIEWS}")


def _resolve(path: Path, project_root: Path) -> Path:
    return path if path.is_absolute() else project_root / path


def accepted_clips(decisions: str | Path = SYNC_CLIPS, shards: str | Path = SHARDS_DIR / "shards.parquet",
                   project_root: Path | None = None) -> pd.DataFrame:
    """The shards.parquet rows of the clips sync_check lets through, with its decision.

    Generator training reads these, never the bare shards: sync_check drops clips whose audio and video
    disagree (mode drop/shift) and corrects the audio of others (mode shift).

    Args:
        decisions: sync_check's `clips.parquet` (the clips that go on: action keep or shift).
        shards: the shards manifest.
    Returns:
        shards.parquet columns plus `action` (keep | shift), `audio_shift_frames` (video frames the mel
        is delayed by) and `sync_mel_path` (the mel to train on: the shifted copy for `shift`).
    Raises:
        ValueError: when sync_check decided on clips the shards do not have (stale outputs: `dvc repro`).
    """
    from headflow.manifest import read_manifest

    root = Path(project_root or Path.cwd())
    d = read_manifest(_resolve(Path(decisions), root), "sync_check")
    d = d[d.action != "drop"][["clip_id", "action", "audio_shift_frames", "mel_path"]]
    s = read_manifest(_resolve(Path(shards), root), "shards")
    stale = sorted(set(d.clip_id) - set(s.clip_id))
    if stale:
        raise ValueError(f"{decisions}: sync_check decided on {len(stale)} clip(s) the shards lack, e.g. {stale[:3]}; "
                         "its outputs are older than the shards: run `dvc repro sync_check`")
    out = s.merge(d.rename(columns={"mel_path": "sync_mel_path"}), on="clip_id", how="inner")
    return out.sort_values("clip_id", ignore_index=True)


def _decision(decisions: pd.DataFrame, clip_id: str) -> pd.Series:
    hit = decisions[decisions.clip_id == clip_id]
    if hit.empty:
        raise ClipNotAccepted(f"clip {clip_id} is not among the clips sync_check lets through (dropped, or not in "
                              "its outputs): list them with headflow.shards.accepted_clips()")
    return hit.iloc[0]


def read_clip(clip_id: str, views: tuple[str, ...] | list[str] = ("face96", "mel"), root: str | Path = SHARDS_DIR,
              labels_root: str | Path = LABELS_DIR, project_root: Path | None = None,
              decisions: pd.DataFrame | None = None) -> ClipShard:
    """Load the requested views of one clip (lazy: only their arrays are decompressed).

    Args:
        views: any of `VIEWS`: "face96", "crop256", "mouth", "eyes" (pixel views), "mel" ((T_mel, 80)
            float32), "nmfc" (pixel view with `mask`), "phones" (`PhoneLabels`), "expressions"
            (`Expressions`). The last three need the `shard_labels` stage.
        root: the shards stage's folder; labels_root: the shard_labels stage's folder (relative paths
            resolve against `project_root`, default the working directory).
        decisions: `accepted_clips()`'s frame: a clip not in it raises `ClipNotAccepted`; a clip that
            sync_check shifted gets the shifted mel and its `audio_shift_frames`.
    Raises:
        ValueError: unknown views, or a label view of a clip whose sidecar lacks that source.
        FileNotFoundError: the clip has no shard (or no sidecar when a label view is asked for).
        ClipNotAccepted: see `decisions`.
    """
    unknown = [v for v in views if v not in VIEWS]
    if unknown:
        raise ValueError(f"unknown view(s) {unknown}; views are {VIEWS}")
    base = Path(project_root or Path.cwd())
    decision = _decision(decisions, clip_id) if decisions is not None else None
    with ShardFile(_resolve(Path(root), base) / "clips" / f"{clip_id}.npz") as f:
        meta = f.meta
        shard = ClipShard(clip_id, meta["speaker_id"], meta["split"], float(meta["fps"]), f.load("valid"))
        cache: dict[str, np.ndarray] = {}

        def get(name: str) -> np.ndarray:
            if name not in cache:
                cache[name] = f.load(name)
            return cache[name]

        for v in views:
            inside = "crop256_inside" in f.names
            if v == "face96":
                shard.views[v] = ImageView(get(v), get(f"{v}_transform"), get(f"{v}_landmarks"))
            elif v == "crop256":
                shard.views[v] = ImageView(get(v), get(f"{v}_transform"), get(f"{v}_landmarks"),
                                           get("crop256_inside").astype(bool) if inside else None)
            elif v in REGION_VIEWS:
                shard.views[v] = _region(get, v, meta["views"][v], inside)
            elif v == "mel":
                shard.views[v] = get("mel")
        if decision is not None and decision.action == "shift":
            shard.audio_shift_frames = int(decision.audio_shift_frames)
            if "mel" in views:
                shard.views["mel"] = np.load(_resolve(Path(decision.sync_mel_path), base))
        crop_geometry = (get("crop256_transform"), get("crop256_landmarks")) if "nmfc" in views else None
    if any(v in LABEL_VIEWS for v in views):
        _read_labels(shard, views, _resolve(Path(labels_root), base), base, crop_geometry)
    return shard


def _region(get, name: str, size: list[int], inside: bool = False) -> ImageView:
    """A region view: the crop256 pixels inside its per-frame box, its transform and landmarks shifted,
    and (`inside`: the shard has crop256's validity mask) the mask cut by the same boxes."""
    h, w = size
    boxes = get(f"{name}_box").astype(np.int64)
    offset = boxes[:, :2].astype(np.float64)
    mask = cut_regions(get("crop256_inside")[..., None], boxes, h, w)[..., 0].astype(bool) if inside else None
    return ImageView(cut_regions(get("crop256"), boxes, h, w), translate(get("crop256_transform"), offset),
                     (get("crop256_landmarks") - offset[:, None, :].astype(np.float32)), mask)


def _read_labels(shard: ClipShard, views, labels_dir: Path, base: Path, crop_geometry) -> None:
    from headflow.nmfc.io import read_nmfc

    with ShardFile(labels_dir / "clips" / f"{shard.clip_id}.npz") as f:
        meta = f.meta
        for v, flag in (("phones", "has_phones"), ("expressions", "has_expressions"), ("nmfc", "has_nmfc")):
            if v in views and not meta[flag]:
                raise ValueError(f"clip {shard.clip_id} has no {v} ({labels_dir}/shard_labels.parquet: {flag} false; "
                                 "filter clips on that column)")
        if "phones" in views:
            shard.views["phones"] = PhoneLabels(f.load("phone_index"), f.load("styletalk_index"), f.load("phone_valid"))
        if "expressions" in views:
            shard.views["expressions"] = Expressions(f.load("exp"), f.load("angles"), f.load("translation"),
                                                     f.load("scale"), f.load("expression_valid"),
                                                     meta["expression_model"])
    if "nmfc" in views:
        pixels, mask = read_nmfc(_resolve(Path(meta["nmfc_path"]), base))
        size = pixels.shape[1]
        M, lm = crop_geometry
        k = size / CROP_SIZE
        shard.views["nmfc"] = ImageView(pixels, resize_transform(M, CROP_SIZE, size),
                                        ((lm + 0.5) * k - 0.5).astype(np.float32), mask)
