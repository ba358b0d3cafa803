"""Params of the `faces` stage (block `faces` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from headflow.config import require


@dataclass
class DetectParams:
    """Face detection on a downscaled frame every few frames."""

    backend: Literal["dlib_hog", "insightface", "face_alignment", "mediapipe"] = "dlib_hog"
    """Detector. dlib_hog runs offline from wheels; the others need weights (`headflow models list`)."""
    every: int = 15
    """Run the detector every this many frames; track with landmarks in between."""
    scale: float = 0.5
    """Detect on the frame resized by this factor (faster; boxes are mapped back to source pixels)."""
    min_detect_px: float = 100.0
    """dlib_hog: raise the detection scale (up to 1) until faces are at least this big at that scale."""
    upsample: int = 0
    """dlib_hog: image pyramid upsampling steps (finds faces under ~80 px at the detection scale)."""
    min_score: float = 0.0
    """Detections scoring below this are ignored."""
    full_res_fallback: bool = True
    """dlib_hog: when the downscaled frame shows no face, retry at full resolution, then upsampled once."""

    def validate(self) -> None:
        require(self.every >= 1, "every", self.every, ">= 1")
        require(0 < self.scale <= 1, "scale", self.scale, "a factor in (0, 1]")


@dataclass
class TrackParams:
    """Associating detections into tracks and following faces between detections."""

    iou_match: float = 0.3
    """A detection continues a track when its IoU with the track's current box is at least this."""
    min_consistency: float = 0.5
    """IoU between the box a frame's landmarks were fitted in and the box they imply; below: lost, re-detect."""
    max_missed: int = 2
    """A track ends after this many detection runs in a row that do not confirm it."""
    min_track_fraction: float = 0.2
    """Tracks present on fewer frames than this fraction of the clip do not compete for main speaker."""
    cut_threshold: float = 20.0
    """A frame starts a new shot (tracks end, detection runs on it) when its 64-px grey thumbnail differs
    from the previous frame's by more than this mean absolute grey level (0-255) and by 5x the typical
    recent difference (headflow.faces.track.CutDetector); 0 disables cut detection."""

    def validate(self) -> None:
        require(self.cut_threshold >= 0, "cut_threshold", self.cut_threshold, ">= 0 grey levels (0 disables)")


@dataclass
class SpeakerParams:
    """Choosing the main speaker among several face tracks."""

    rule: Literal["largest_central", "largest", "central"] = "largest_central"
    """Score of a track: face size x centrality (default), size only, or centrality only (x coverage)."""
    ambiguity_ratio: float = 0.8
    """Quarantine ambiguous_speaker when the runner-up's score is at least this fraction of the best."""
    same_person_distance: float = 0.6
    """Tracks that do not overlap in time (before and after a cut, or a face lost and found again) are
    one speaker when their dlib face descriptors lie within this distance (dlib's same-person threshold);
    further apart they compete, and a clip whose speakers change at a cut is quarantined `shot_cut`."""

    def validate(self) -> None:
        require(0 < self.ambiguity_ratio <= 1, "ambiguity_ratio", self.ambiguity_ratio, "a fraction in (0, 1]")
        require(self.same_person_distance > 0, "same_person_distance", self.same_person_distance, "> 0")


@dataclass
class SmoothParams:
    """Temporal smoothing of boxes and landmarks (zero-phase: no lag on real motion)."""

    method: Literal["savgol", "one_euro", "none"] = "savgol"
    """savgol: Savitzky-Golay (exact on polynomials up to `polyorder`); one_euro: forward-backward One-Euro."""
    window: int = 9
    """savgol: window length in frames (odd)."""
    polyorder: int = 2
    """savgol: polynomial order."""
    mouth_window: int = 5
    """savgol: window for the mouth points 48-67 (lips move fast when talking; 1 or less: no smoothing)."""
    min_cutoff: float = 1.5
    """one_euro: minimum cutoff frequency (Hz); lower = smoother when still."""
    beta: float = 0.3
    """one_euro: speed coefficient; higher = less lag on fast motion."""
    d_cutoff: float = 1.0
    """one_euro: cutoff of the derivative filter (Hz)."""

    def validate(self) -> None:
        if self.method == "savgol":
            require(self.window % 2 == 1 and self.window > self.polyorder, "window", self.window,
                    f"an odd number > polyorder ({self.polyorder}) with method savgol")
        require(self.mouth_window <= 1 or self.mouth_window % 2 == 1, "mouth_window", self.mouth_window,
                "an odd number (or <= 1: the mouth unsmoothed)")


@dataclass
class CropParams:
    """Aligned face crops (similarity transform per frame) and their videos."""

    size: int = 256
    """Side of the aligned face crop in pixels."""
    scale: float = 1.0
    """Zoom of the FFHQ-style framing (1.0: FFHQ's; >1 zooms in)."""
    crf: int = 18
    """x264 quality of the crop videos."""
    preset: Literal["ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower",
                    "veryslow"] = "ultrafast"
    """x264 preset of the crop videos (ultrafast: the least CPU, ~3x the bytes of superfast at the same crf)."""
    mouth_video: bool = False
    """Also write the Wav2Lip lower-half mouth crop video (96x48) per clip under mouth/."""
    max_outside: float = 0.5
    """Quarantine `crop_outside_frame` when, on the median valid frame, more than this fraction of the
    aligned crop lies outside the source frame (filled by repeating its edge): tight face crops (VoxCeleb's
    224x224) put a large share of the FFHQ framing outside. The per-clip median is reported in the faces
    metrics (`crop_outside_median`, `crop_outside_p90`) either way."""

    def validate(self) -> None:
        require(self.size % 2 == 0, "size", self.size, "an even number of pixels (H.264 yuv420p)")
        require(0 < self.max_outside <= 1, "max_outside", self.max_outside, "a fraction in (0, 1]")


@dataclass
class FacesParams:
    """Ingested clips -> main-speaker face track, 68 landmarks per frame, aligned crops."""

    detect: DetectParams = field(default_factory=DetectParams)
    """Detection."""
    track: TrackParams = field(default_factory=TrackParams)
    """Tracking."""
    speaker: SpeakerParams = field(default_factory=SpeakerParams)
    """Main speaker choice."""
    smooth: SmoothParams = field(default_factory=SmoothParams)
    """Temporal smoothing."""
    crop: CropParams = field(default_factory=CropParams)
    """Crops."""
    min_face_px: float = 48.0
    """Quarantine face_too_small when the main face's median box side is below this (source pixels)."""
    min_detection_rate: float = 0.9
    """Quarantine low_detection_rate when fewer frames than this have valid landmarks."""
    max_out_of_frame: float = 0.2
    """Quarantine face_out_of_frame when more than this fraction of face frames are cut by the border."""
    out_of_frame_points: float = 0.1
    """A frame is cut by the border when more than this fraction of its 68 landmarks lie outside it."""
    max_reject_fraction: float = 0.5
    """Fail the stage when more than this fraction of clips is quarantined."""
    workers: int = 2
    """Processes working on clips in parallel."""

    def validate(self) -> None:
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "a fraction in [0, 1]")
        require(self.workers >= 1, "workers", self.workers, ">= 1")
