"""StyleTalk's released sample format -> `StyleTalkClip`, resampled explicitly from 30 to 25 fps.

What StyleTalk's users have per clip (github.com/FuxiVirtualHuman/styletalk `samples/`): a `.mat` whose
`coeff` is (T, 257) in the Deep3DFaceRecon layout (id 0:80, exp 80:144, tex 144:224, angle 224:227,
gamma 227:254, trans 254:257; the released `get_face3d_clip` reads exp = coeff[:, 80:144]), a JSON list of
per-frame phoneme ids (its 41-symbol phindex, 30 fps, `<name>_seq.json`), a 256x256 video and a 16 kHz
wav. headflow's media are 25 fps, so both sequences are resampled here, explicitly:

- 25 fps frame t covers [t/25, (t+1)/25) s; its centre is c = (t + 0.5) / 25 s (docs/DESIGN.md "Phonemes").
- phonemes: the 30 fps frame active at the centre, floor(30 c) (frame t takes the phone at its centre);
- expressions: linear interpolation at the centre between the 30 fps frames whose centres (i + 0.5)/30
  surround it (at the ends, the end frame);
- output length: floor(T * 25 / 30) frames (every output frame's centre lies inside the input).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from headflow.generators.styletalk.data import ClipRejected, StyleTalkClip
from headflow.generators.styletalk.params import N_PHONEMES

DEEP3D_EXP = slice(80, 144)
"""The 64 expression coefficients in Deep3DFaceRecon's 257-d coefficient vector."""


def resample_count(n: int, fps_in: float, fps_out: float) -> int:
    """Frames at `fps_out` whose centres lie inside `n` frames at `fps_in`: floor(n * fps_out / fps_in)."""
    return int(np.floor(n * fps_out / fps_in + 1e-9))


def resample_labels(labels: np.ndarray, fps_in: float = 30.0, fps_out: float = 25.0) -> np.ndarray:
    """Per-frame labels (T,) at fps_in -> the label active at each fps_out frame's centre."""
    labels = np.asarray(labels)
    n = resample_count(len(labels), fps_in, fps_out)
    centre = (np.arange(n) + 0.5) / fps_out
    return labels[np.minimum(np.floor(centre * fps_in + 1e-9).astype(np.int64), len(labels) - 1)]


def resample_values(values: np.ndarray, fps_in: float = 30.0, fps_out: float = 25.0) -> np.ndarray:
    """(T, K) values at fps_in -> (floor(T fps_out / fps_in), K), linear interpolation at the frame centres."""
    values = np.asarray(values, np.float64)
    n = resample_count(len(values), fps_in, fps_out)
    pos = np.clip((np.arange(n) + 0.5) / fps_out * fps_in - 0.5, 0, len(values) - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, len(values) - 1)
    f = (pos - lo)[:, None]
    return ((1 - f) * values[lo] + f * values[hi]).astype(np.float32)


def read_styletalk_sample(mat_path: str | Path, phonemes_path: str | Path | None = None, clip_id: str | None = None,
                          style: str = "", fps_in: float = 30.0, fps_out: float = 25.0,
                          expression_model: str = "bfm_deep3d") -> StyleTalkClip:
    """One released-format sample as a 25 fps `StyleTalkClip`.

    Args:
        mat_path: the `.mat` with `coeff` (T, 257).
        phonemes_path: its `_seq.json` phoneme list (None: a style-only clip, every frame silence and
            `valid`; its phonemes must not be trained on).
        clip_id: default the file stem.
        style: the style label.
        fps_in, fps_out: StyleTalk's 30 fps -> headflow's canonical 25.
        expression_model: the model name the coefficients belong to (Deep3DFaceRecon's BFM).

    Returns:
        StyleTalkClip with exp (T25, 64) and phones (T25,).

    Raises:
        ClipRejected: `frame_count_mismatch` (coeff is not (T, 257), or the phoneme list has another length
            than the coefficients), `unknown_phone` (ids outside 0..40); FileNotFoundError: a missing file.
    """
    from scipy.io import loadmat

    mat_path = Path(mat_path)
    cid = clip_id or mat_path.stem
    coeff = np.asarray(loadmat(mat_path)["coeff"], np.float64)
    if coeff.ndim != 2 or coeff.shape[1] != 257:
        raise ClipRejected("frame_count_mismatch", f"{mat_path}: coeff has shape {coeff.shape}, expected (T, 257) in "
                           "the Deep3DFaceRecon layout")
    exp30 = coeff[:, DEEP3D_EXP]
    if phonemes_path is not None:
        phones30 = np.asarray(json.loads(Path(phonemes_path).read_text()), np.int64)
        if phones30.ndim != 1 or len(phones30) != len(exp30):
            raise ClipRejected("frame_count_mismatch", f"clip {cid}: {len(phones30)} phoneme frames in {phonemes_path} "
                               f"but {len(exp30)} coefficient frames in {mat_path} (both at {fps_in:g} fps)")
        bad = (phones30 < 0) | (phones30 >= N_PHONEMES)
        if bad.any():
            raise ClipRejected("unknown_phone", f"clip {cid}: phoneme ids {sorted(set(phones30[bad].tolist()))[:5]} "
                               f"outside StyleTalk's 0..{N_PHONEMES - 1}")
        phones = resample_labels(phones30, fps_in, fps_out)
    else:
        from headflow.generators.styletalk.params import SILENCE

        phones = np.full(resample_count(len(exp30), fps_in, fps_out), SILENCE, np.int64)
    exp = resample_values(exp30, fps_in, fps_out)
    return StyleTalkClip(cid, phones.astype(np.int64), exp, np.ones(len(exp), bool), expression_model, style, "")
