"""Params of the `ingest` stage (block `ingest` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from headflow.catalog import CATALOG
from headflow.config import require


def _codec_known(name: str) -> bool:
    import codecs

    try:
        codecs.lookup(name)
    except LookupError:
        return False
    return True


@dataclass
class SplitParams:
    """Speaker-disjoint train/val/test split; val and test only get speakers with usable clips.

    Rule (headflow.ingest.splits.assign_splits): speakers are shuffled with `seed`; walking that
    order, test then val take the first *eligible* speakers (at least `min_speaker_clips` usable
    accepted clips); everyone else trains. Clips ingest quarantines never count, nor do the demo
    corpus's deliberately bad inputs, so single-clip pseudo-speakers (a flat GRID folder's clips,
    the demo's `bad/` folder) always train.
    """

    seed: int = 0
    """Seed of the speaker shuffle."""
    val: float = 0.15
    """Fraction of eligible speakers in val (at least one when > 0 and there are 3+ eligible speakers)."""
    test: float = 0.15
    """Fraction of eligible speakers in test (same rule)."""
    min_speaker_clips: int = 2
    """A speaker needs at least this many usable accepted clips to be dealt to val or test."""

    def validate(self) -> None:
        require(0 <= self.val and 0 <= self.test and self.val + self.test < 1, "test", self.test,
                f">= 0, with val ({self.val}) + test < 1")


@dataclass
class SegmentParams:
    """Long recordings cut into clips at pauses (`headflow.ingest.segment`)."""

    enabled: bool = False
    """Cut every input (or HDTF span) longer than `max_duration_s` into consecutive segments of
    `min_duration_s`..`max_duration_s` at pauses in the speech instead of quarantining it `too_long`;
    each segment is a clip with its source time range (`source_start_s`, `source_end_s`)."""
    pause_db: float = 25.0
    """A pause lies more than this (dB) below the recording's speech level (95th-percentile 20 ms frame)."""
    min_pause_s: float = 0.2
    """Shortest quiet run that counts as a pause (seconds)."""

    def validate(self) -> None:
        require(self.pause_db > 0, "segment.pause_db", self.pause_db, "> 0 dB")
        require(self.min_pause_s > 0, "segment.min_pause_s", self.min_pause_s, "> 0 seconds")


@dataclass
class IngestParams:
    """Probe, hash, split and normalise raw videos into `clips.parquet`."""

    source: Literal["demo", "folder", "grid", "lrs2", "hdtf", "mead", "voxceleb2", "wav2lip_pairs"] = "demo"
    """Layout of `root`: demo corpus, plain folder, GRID (speaker folders + .align), LRS2 file list, HDTF
    (its time-stamp, crop and URL lists + the downloaded videos), MEAD (`<id>/video/<view>/<emotion>/
    <level>/<n>.mp4`), VoxCeleb2 (`<id>/<video>/<clip>.mp4`), Wav2Lip's LRS2/LRS3 test-pair list
    (`file_list`; the pairs go to `dubbing_pairs.parquet`). See `headflow.ingest.layouts`."""
    root: str = CATALOG.stage("demo_corpus").folder
    """Folder holding the raw videos (relative to the project root or absolute)."""
    file_list: str | None = None
    """lrs2: the list file (e.g. pretrain.txt / train.txt); wav2lip_pairs: Wav2Lip's test-pair list
    (`lrs2.txt` / `lrs3.txt`); relative to `root`."""
    transcripts_json: str | None = None
    """Optional JSON {relative path or stem: transcript} (GRID's transcripts.json)."""
    extensions: list[str] = field(default_factory=lambda: [".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg",
                                                             ".mpeg", ".ts", ".3gp"])
    """Video file extensions to pick up (case-insensitive, with or without the dot). Any other file under
    `root` that is not a transcript, alignment, table or document is quarantined as
    `unsupported_extension` (folder, demo and GRID layouts), so nothing is left out silently."""
    transcript_encodings: list[str] = field(default_factory=lambda: ["cp1252"])
    """Legacy code pages (Python codec names) tried, in order, for a transcript that is not UTF-8 and has
    no byte-order mark (UTF-8/16/32 BOMs are always honoured); [] accepts UTF only. A transcript none of
    them decodes into clean text is quarantined as `transcript_encoding`."""
    speaker_from: Literal["parent", "stem_prefix", "none"] = "parent"
    """folder source: speaker id from the parent folder name, the file-name prefix before '_' , or none."""
    min_duration_s: float = 1.0
    """Shorter inputs are quarantined as too_short."""
    max_duration_s: float = 15.0
    """Longer inputs are quarantined as too_long, or cut at pauses with `segment.enabled`."""
    segment: SegmentParams = field(default_factory=SegmentParams)
    """Segmentation of long recordings at pauses."""
    max_av_length_diff_s: float = 0.25
    """Quarantine `av_length_mismatch` when the audio stream's and the video stream's own lengths differ
    by more than this (seconds, either one shorter), start offsets aside: a clip with 3 s of picture and
    1 s of sound would otherwise be aligned and scored as if the sound covered the picture."""
    max_downmix_loss_db: float = 10.0
    """Mono is the mean of the channels unless that mean lies more than this (dB) below the loudest
    channel (channels in antiphase cancel), then that channel alone (`headflow.media.extract_audio`)."""
    fps: int = 25
    """Canonical frame rate of the normalised video."""
    sample_rate: int = 16000
    """Canonical sample rate of the normalised mono audio."""
    crf: int = 18
    """x264 quality of the normalised video."""
    max_side: int | None = None
    """Downscale so the longer side is at most this (null keeps the native resolution)."""
    face_probe_frames: int = 4
    """Run dlib HOG on this many evenly spaced frames to count faces (0 disables)."""
    reject_no_face: bool = True
    """Quarantine clips where the face probe saw no face on any sampled frame (no_face)."""
    split: SplitParams = field(default_factory=SplitParams)
    """Speaker-disjoint split."""
    max_reject_fraction: float = 0.5
    """Fail the stage when more than this fraction of inputs is quarantined."""
    workers: int = 2
    """Processes probing and normalising clips in parallel."""

    def validate(self) -> None:
        require(self.min_duration_s < self.max_duration_s, "min_duration_s", self.min_duration_s,
                f"below max_duration_s ({self.max_duration_s})")
        require(self.source not in ("lrs2", "wav2lip_pairs") or bool(self.file_list), "file_list", self.file_list,
                f"the list file with source '{self.source}' (lrs2: e.g. 'pretrain.txt'; wav2lip_pairs: 'lrs2.txt')")
        self.segment.validate()
        require(not self.segment.enabled or self.max_duration_s >= 2 * self.min_duration_s, "max_duration_s",
                self.max_duration_s, f">= 2 x min_duration_s ({self.min_duration_s}) with segment.enabled (a long "
                "recording could not always be cut into segments within both bounds)")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "a fraction in [0, 1]")
        require(self.workers >= 1, "workers", self.workers, ">= 1")
        require(self.max_av_length_diff_s >= 0, "max_av_length_diff_s", self.max_av_length_diff_s, ">= 0 seconds")
        require(self.max_downmix_loss_db > 0, "max_downmix_loss_db", self.max_downmix_loss_db, "> 0 dB")
        require(all(e.strip().lstrip(".") for e in self.extensions), "extensions", self.extensions,
                "file extensions such as '.mp4' (no empty entries)")
        for enc in self.transcript_encodings:
            require(_codec_known(enc), "transcript_encodings", self.transcript_encodings,
                    f"Python codec names ('{enc}' is not one; e.g. 'cp1252', 'cp1251', 'shift_jis')")
        require(0 <= self.split.val + self.split.test < 1, "split.val", self.split.val,
                f"a fraction with split.val + split.test ({self.split.test}) in [0, 1)")
        require(self.split.min_speaker_clips >= 1, "split.min_speaker_clips", self.split.min_speaker_clips, ">= 1")
