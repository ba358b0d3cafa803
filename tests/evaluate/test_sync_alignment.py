"""The evaluation's sync windows line up with the audio at any scored range start (frame 1, 3, ...).

An oracle stands in for a trained expert on the synthetic sync task of tests/sync (the mouth opens with
the loudness of the audio over the frame's 40 ms): its face embedding is the mouth opening read from
the first frame of the window, its audio embedding the loudness of the window's first 4 mel frames, on
the same scale. Scored through `Scorer`, the clip's offset must be 0 and, with the audio delayed by 5
frames (`shift_audio`), +5, whatever frame the range starts at (mel windows start at int(3.2 f), so a
range start that is not a multiple of 5 would expose a window cut at the wrong mel frame).
"""

import numpy as np
import pytest
import torch

from headflow.evaluate.scoring import Scorer, SyncNets
from headflow.metrics.lse import shift_audio
from synthetic import synthetic_clip


class OracleExpert(torch.nn.Module):
    """Reads the synthetic clip's mouth height and loudness; the scorer's interface of SyncExpert."""

    embedding_size = 1
    face_centre = audio_centre = "none"

    def embed_face(self, face: torch.Tensor) -> torch.Tensor:      # (B, 15, 48, 96) in [0, 1]
        dark = (face[:, :3].mean(dim=1) < 0.3).float().mean(dim=(1, 2))        # frame 0 of the window
        height = dark * 48 * 96 / (np.pi * 30)                                  # ellipse area = pi * 30 * h
        return ((height - 2) / 20).unsqueeze(1)

    def embed_audio(self, mel: torch.Tensor) -> torch.Tensor:       # (B, 1, 80, 16)
        profile = torch.linspace(1.0, 0.3, 80).mean()
        return ((mel[:, 0, :, :4].mean(dim=(1, 2)) + 4) / (7 * profile)).unsqueeze(1)


@pytest.mark.parametrize("start", [0, 1, 3])
def test_delayed_audio_moves_the_judged_offset_by_the_delay(start):
    oracle = OracleExpert()
    for seed in range(3):
        clip = synthetic_clip(f"x{seed}", 80, 200 + seed)
        scorer = Scorer(SyncNets(judge=oracle), {"own": clip.mel, "late": shift_audio(clip, 5).mel}, lambda c: None,
                        max_offset=8, min_pairs=5)
        mouths = clip.mouths[start:70]
        own = scorer._lse("judge", oracle, mouths, "own", start)
        late = scorer._lse("judge", oracle, mouths, "late", start)
        assert own.offset == 0 and late.offset == 5
        assert own.mean_dist[8] < late.mean_dist[8]          # worse at offset 0 once the audio lags
