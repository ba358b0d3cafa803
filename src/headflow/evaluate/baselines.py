"""The evaluation set's tasks and the reference systems every report carries: ground truth and baselines.

A task is one source clip under one protocol: which clip's frames and face geometry the output
follows, which audio drives it, and the frame range every system is scored on (`scored_range`: from
frame 1, frame 0 being the reference any system may be given, to the last frame with a full audio
window). Canonical tasks, on every clip of the evaluation split:

- reconstruction: the clip with its own audio; the real frames are the ground truth.
- dubbing: the clip with the audio of the next clip in id order, or of its listed pair when ingest
  wrote a pair list (`dubbing_pairs`); no real video
  exists for that audio, so full-reference metrics do not apply.

Reference systems, computed in the same run on the same clips and frames, as full frames in the
source clip's geometry (so they are cropped and scored exactly like a generated video):

| system                    | reconstruction | dubbing | frames                                           |
| ------------------------- | -------------- | ------- | ------------------------------------------------ |
| `ground_truth`            | yes            | no      | the real frames (PSNR inf, SSIM 1, LMD 0)        |
| `baseline_static_frame`   | yes            | no      | frame 0 repeated (a still photo of the speaker)  |
| `baseline_reference_fill` | yes            | yes     | each real frame with the lower half of its 96x96 face crop replaced by frame 0's, pasted back as Wav2Lip pastes its output |
| `baseline_unedited`       | no             | yes     | the real frames, unchanged, with the new audio   |

The reference fill is the lip-sync U-Net's input without the network (its reference frame copied
into the masked half): a fair opponent for a lip-sync generator, which sees the same inputs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from headflow.evaluate.crops import FACE_SIZE, cut, paste_lower_half
from headflow.manifest.generated import dubbing_pairs, scored_range

REFERENCE_FRAME = 0
"""The frame the static and reference-fill baselines copy (and the scored range starts after)."""

BASELINES: dict[str, tuple[str, ...]] = {
    "reconstruction": ("ground_truth", "baseline_static_frame", "baseline_reference_fill"),
    "dubbing": ("baseline_unedited", "baseline_reference_fill"),
}
"""Reference systems per protocol, in report order (ground truth first)."""
REFERENCE_SYSTEMS = ("ground_truth", "baseline_static_frame", "baseline_reference_fill", "baseline_unedited")


@dataclass(frozen=True)
class Task:
    """One scored unit: a source clip under a protocol, with its audio and frame range."""

    protocol: str
    """reconstruction | dubbing | reenactment | transfer."""
    clip_id: str
    """The per_clip.parquet `clip_id`: the source clip (reconstruction, dubbing) or the generated id."""
    source_clip: str
    """The clip giving the identity."""
    audio_clip: str | None
    """The clip whose audio drives the output and judges its sync (None: no audio)."""
    frame_clip: str
    """The real clip whose frames and face geometry the output follows (the driver in reenactment)."""
    has_target: bool
    """The frame clip's real frames are what the output should show: full-reference metrics apply."""
    frame_start: int
    frame_end: int

    @property
    def n_frames(self) -> int:
        return self.frame_end - self.frame_start


def canonical_tasks(n_video: dict[str, int], n_mel: dict[str, int], protocols: Iterable[str],
                    frame_start: int = 1, listed: dict[str, str] | None = None
                    ) -> tuple[list[Task], list[tuple[str, str]]]:
    """The reconstruction and dubbing tasks of the evaluation clips.

    Args:
        listed: a dataset's own dubbing pairs {video clip: audio clip} (ingest's `dubbing_pairs.parquet`);
            None or empty: each clip takes the next clip's audio in id order (`dubbing_pairs`).
        n_video: clip_id -> video frames, for every evaluation clip.
        n_mel: clip_id -> mel frames of its audio.
        protocols: which of "reconstruction", "dubbing" to build.
        frame_start: first scored frame (>= 1: frame 0 is the baselines' reference).

    Returns:
        (tasks sorted by protocol then clip, skipped (clip_id, reason) pairs for clips whose scored
        range would be empty, e.g. a dubbing audio shorter than two frames).
    """
    tasks, skipped = [], []
    clips = sorted(n_video)
    pairs = dubbing_pairs(clips, listed)
    for protocol in protocols:
        for c in clips:
            if protocol == "reconstruction":
                audio, target = c, True
            elif protocol == "dubbing":
                if c not in pairs:
                    skipped.append((c, "not in the dubbing pair list" if listed else
                                    "dubbing needs at least two evaluation clips"))
                    continue
                audio, target = pairs[c], False
            else:
                raise ValueError(f"no canonical tasks for protocol {protocol!r}; expected reconstruction or dubbing")
            s, e = scored_range(n_video[c], n_mel[audio], frame_start)
            if e <= s:
                skipped.append((c, f"{protocol}: no frame in [{s}, {e}) has a full window of {audio}'s audio"))
                continue
            tasks.append(Task(protocol, c, c, audio, c, target, s, e))
    return tasks, skipped


def reference_frames(system: str, frames: list[np.ndarray], m96: np.ndarray) -> Callable[[int], np.ndarray]:
    """Frame `f` of a reference system, in the source clip's geometry (see the module table).

    Args:
        system: one of `REFERENCE_SYSTEMS`.
        frames: the real clip's decoded RGB frames (at least up to the last scored frame).
        m96: (T, 2, 3) the clip's 96x96 face-crop transforms (`crops.face96_transforms`).

    Returns:
        A function of the absolute frame index giving an (H, W, 3) uint8 frame.

    Raises:
        ValueError: an unknown system.
    """
    if system in ("ground_truth", "baseline_unedited"):
        return lambda f: frames[f]
    if system == "baseline_static_frame":
        return lambda f: frames[REFERENCE_FRAME]
    if system == "baseline_reference_fill":
        lower = cut(frames[REFERENCE_FRAME], m96[REFERENCE_FRAME], FACE_SIZE)[FACE_SIZE // 2:]
        return lambda f: paste_lower_half(frames[f], lower, m96[f])
    raise ValueError(f"unknown reference system {system!r}; expected one of {REFERENCE_SYSTEMS}")
