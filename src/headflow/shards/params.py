"""Params of the `shards` and `shard_labels` stages (blocks of the same names in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from headflow.config import require

Codec = Literal["zstd", "zlib"]


@dataclass
class RegionParams:
    """A fixed-size box in the 256x256 aligned crop, centred per frame on some of the 68 landmarks."""

    height: int
    """Box height in crop256 pixels (the region view's rows)."""
    width: int
    """Box width in crop256 pixels (the region view's columns)."""

    def validate(self) -> None:
        require(0 < self.height <= 256 and 0 < self.width <= 256, "height x width", f"{self.height}x{self.width}",
                "a region box inside the 256x256 crop")


@dataclass
class ShardsParams:
    """One decode per clip: the crops every trainer needs, their transforms, landmarks and the mel."""

    codec: Codec = "zstd"
    """Compression of each array in a clip file. "zstd" (pyarrow's bundled zstd; members `*.npy.zst`) or
    "zlib" (zip deflate; members are plain `.npy`, so `numpy.load` opens the file). Demo (785 frames of
    crop256 after the temporal delta): zstd 3 = 2.79x at ~43 MB/s, zlib 1 = 2.54x at ~26 MB/s."""
    level: int = 3
    """Compression level: zstd 1-22 (9: ~7 % smaller than 3 at ~3.5x the time), zlib 1-9."""
    temporal_delta: bool = True
    """Store image arrays as frame-to-frame differences (uint8, wrapping), undone on read by a cumulative
    sum. Lossless; halves the demo's crop256 bytes (zstd 3: 1.46x -> 2.79x)."""
    mouth: RegionParams = field(default_factory=lambda: RegionParams(96, 96))
    """Mouth box, centred on landmarks 48-67 (outer and inner lips). 96x96: the demo's lips span 57x28
    crop pixels on average, 72x42 at most."""
    eyes: RegionParams = field(default_factory=lambda: RegionParams(64, 160))
    """Eye box, centred on landmarks 17-26 and 36-47 (brows and eyes). 64x160: the demo's brows and eyes
    span 114x30 crop pixels on average, 123x40 at most."""
    workers: int = 2
    """Processes cutting clips in parallel (one decode per clip each)."""
    max_reject_fraction: float = 0.5
    """Fail the stage when more than this fraction of clips is quarantined."""

    def validate(self) -> None:
        top = 22 if self.codec == "zstd" else 9
        require(1 <= self.level <= top, "level", self.level, f"in [1, {top}] for codec {self.codec}")
        require(self.workers >= 1, "workers", self.workers, ">= 1")
        require(0.0 <= self.max_reject_fraction <= 1.0, "max_reject_fraction", self.max_reject_fraction, "a fraction in [0, 1]")
        self.mouth.validate()
        self.eyes.validate()


@dataclass
class ShardLabelsParams:
    """Per-clip annotation sidecars of the shards: phone labels, expressions, the NMFC file."""

    max_label_frame_mismatch: int = 2
    """Phone labels may cover up to this many frames fewer or more than the video (the audio and the
    video of a clip end a frame apart); missing frames are marked unlabelled (`phones.valid`), extra
    ones dropped. A larger difference quarantines the clip as `frame_count_mismatch`."""
    codec: Codec = "zstd"
    """Compression of the sidecar arrays (see `shards.codec`)."""
    level: int = 3
    """Compression level (see `shards.level`)."""
    max_reject_fraction: float = 0.5
    """Fail the stage when more than this fraction of clips is quarantined."""

    def validate(self) -> None:
        require(self.max_label_frame_mismatch >= 0, "max_label_frame_mismatch", self.max_label_frame_mismatch, ">= 0")
        top = 22 if self.codec == "zstd" else 9
        require(1 <= self.level <= top, "level", self.level, f"in [1, {top}] for codec {self.codec}")
        require(0.0 <= self.max_reject_fraction <= 1.0, "max_reject_fraction", self.max_reject_fraction, "a fraction in [0, 1]")
