"""Settings of the lip-sync expert network (torch-free, so params loading does not import torch).

`headflow.nn.expert` re-exports everything here; build the network with `SyncExpert(ExpertConfig(...))`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from headflow.checks import require

FaceInput = Literal["rgb", "gray", "motion", "rgb_motion", "gray_motion_norm", "motion_norm", "gray_norm"]
AudioInput = Literal["raw", "norm"]
ClipCentre = Literal["none", "clip"]

GREY_INPUTS = ("gray", "motion", "motion_norm", "gray_motion_norm", "gray_norm")
"""face_input settings that average each frame's colours first (colour augmentation is moot for them)."""


@dataclass(frozen=True)
class ExpertConfig:
    """Sizes and fixed input steps of the expert. The defaults are the `train_expert` stage's (params.yaml
    embeds this class as `train_expert.model`); `PUBLISHED_EXPERT` is the Wav2Lip expert's."""

    width: float = 0.25
    """Channel multiplier of the encoders (1.0 = the published expert, 512-d embeddings; 0.5: ~190
    training pairs/s on 2 CPU cores, 0.25: ~400; held-out t1_2 after 24 epochs 0.833 at 0.25,
    0.830-0.848 at 0.5)."""
    depth: int = 1
    """Residual blocks after each strided stage (the published expert has 2-3 per face stage, 2 per audio stage)."""
    face_input: FaceInput = "gray_motion_norm"
    """Fixed preprocessing of the face window inside the model (input stays 15 channels for Wav2Lip
    compatibility): "rgb" = as is (published; held-out offset recovery 50%); "gray" = each frame's
    colours averaged; "motion" = gray, minus the window's mean frame (identity and lighting cancel,
    mouth motion remains; the best input without clip centring); "rgb_motion" = RGB minus the
    window's mean frame; "gray_motion_norm" = per frame (grey, motion, 0) with the window's grey mean
    removed and both divided by the window's grey contrast (std): the mouth's shape *and* its
    motion, on the same scale whatever the lips' and skin's colours (with `face_centre: clip` it sees
    the shape relative to the clip average); "motion_norm" = "motion" divided by the window's motion
    energy (std), so faint and strong lip contrast look alike; "gray_norm" = grey frames minus the
    window's mean grey level, divided by the window's grey std: the absolute mouth shape (a held open
    vowel stays open, unlike "motion") with brightness and contrast removed."""
    audio_input: AudioInput = "raw"
    """Fixed preprocessing of the mel window: "raw" = as given (after `audio_centre`); "norm" =
    subtract each mel band's mean over the window and divide by the window's std (removes the voice's
    spectral envelope and loudness, and with it the loudness relative to the clip)."""
    embed_dropout: float = 0.0
    """Dropout on the pre-normalisation embeddings during training (0 = none)."""
    face_centre: ClipCentre = "clip"
    """Whole-clip face step before windowing (`headflow.sync.data.normalise_clip`): "clip" = every
    mouth crop minus the clip's mean mouth image, so the speaker's appearance cancels but the absolute
    opening relative to the clip's average stays (held-out t1_2 0.801 -> 0.833 at width 0.25,
    `bench/expert.py`); "none" = as cropped (published)."""
    audio_centre: ClipCentre = "clip"
    """Whole-clip mel step: "clip" = per-utterance CMVN (each band minus its clip mean, over the clip's
    std); "none" = as computed (published)."""

    def validate(self) -> None:
        """Checks through `headflow.checks.require` (the params loader names the dotted key)."""
        require(self.width > 0, "width", self.width, "> 0")
        require(self.depth >= 1, "depth", self.depth, ">= 1")
        require(0 <= self.embed_dropout < 1, "embed_dropout", self.embed_dropout, "in [0, 1)")
        for name, kind in (("face_input", FaceInput), ("audio_input", AudioInput), ("face_centre", ClipCentre),
                           ("audio_centre", ClipCentre)):
            require(getattr(self, name) in get_args(kind), name, getattr(self, name), f"one of {list(get_args(kind))}")

PUBLISHED_EXPERT = ExpertConfig(width=1.0, depth=2, face_input="rgb", audio_input="raw", embed_dropout=0.0,
                                face_centre="none", audio_centre="none")
"""The published Wav2Lip expert's settings (`models/syncnet.py` SyncNet_color): full width (512-d
embeddings), raw RGB windows and mels, no clip-level steps. Depth 2 is the nearest this class gets: the
released network has 2-3 residual blocks per face stage and 2 per audio stage, so its weights do not
load here. For GPUs; too slow for the demo on 2 CPU cores."""
