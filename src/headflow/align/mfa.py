"""The Montreal Forced Aligner as an external tool: corpus folder in, TextGrids out.

MFA's Kaldi bindings come only from conda-forge, so it is never a Python dependency of headflow:
`mfa` must be on PATH (`conda install -c conda-forge montreal-forced-aligner`), with its dictionary
and acoustic model downloaded beforehand (`mfa model download acoustic english_us_arpa`, same for
`dictionary`), because nothing downloads at run time.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from headflow.align.types import Alignment, UtteranceInput
from headflow.align.params import MfaParams
from headflow.align.phones import SIL, normalize_phone
from headflow.align.textgrid import read_textgrid


class MfaNotFound(RuntimeError):
    """The `mfa` command is not on PATH."""


def find_mfa(command: str = "mfa") -> str:
    """Path of the MFA executable, or MfaNotFound with how to get it."""
    path = shutil.which(command)
    if path is None:
        raise MfaNotFound(
            f"align.backend is 'mfa' but the Montreal Forced Aligner command {command!r} is not on PATH. "
            "Install it from conda-forge (its Kaldi bindings are not on PyPI): "
            "`conda install -c conda-forge montreal-forced-aligner`, then "
            "`mfa model download acoustic english_us_arpa` and `mfa model download dictionary english_us_arpa`; "
            "or set align.backend: builtin (no install or model needed).")
    return path


def write_corpus(utts: list[UtteranceInput], speakers: dict[str, str], root: Path) -> None:
    """MFA's corpus layout: <root>/<speaker>/<clip_id>.wav + .lab (the words, space-separated)."""
    for u in utts:
        folder = root / (speakers.get(u.clip_id) or "unknown")
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{u.clip_id}.wav", np.asarray(u.wav, np.float32), 16000, subtype="PCM_16")
        (folder / f"{u.clip_id}.lab").write_text(" ".join(u.words) + "\n", encoding="utf-8")


def alignment_from_textgrid(path: Path, utt: UtteranceInput) -> Alignment:
    """Read an MFA TextGrid (tiers `words`/`phones`, or `<speaker> - words`) into an Alignment."""
    grid = read_textgrid(path)
    tier = lambda kind: next((v for k, v in grid.tiers.items() if k == kind or k.endswith(f" - {kind}")), None)  # noqa: E731
    words, phones = tier("words"), tier("phones")
    if words is None or phones is None:
        raise ValueError(f"{path}: expected 'words' and 'phones' tiers, found {list(grid.tiers)}")
    word_spans = [(a, b, w) for a, b, w in words if w.strip()]
    out_phones = []
    for a, b, p in phones:
        label = normalize_phone(p)
        mid = (a + b) / 2
        w = next((k for k, (wa, wb, _) in enumerate(word_spans) if wa <= mid < wb), -1)
        out_phones.append((a, b, label, w if label != SIL or p.strip().lower() == "spn" else -1))
    return Alignment(utt.clip_id, grid.xmax, out_phones, word_spans)


def run_mfa(utts: list[UtteranceInput], speakers: dict[str, str], params: MfaParams, work_dir: Path,
            dictionary: str | None = None) -> list[Alignment]:
    """Align with `mfa align`; clips MFA produced no TextGrid for come back with `failed` set."""
    exe = find_mfa(params.command)
    corpus, out = work_dir / "corpus", work_dir / "textgrids"
    shutil.rmtree(work_dir, ignore_errors=True)
    write_corpus(utts, speakers, corpus)
    cmd = [exe, "align", str(corpus), dictionary or params.dictionary, params.acoustic_model, str(out),
           "--clean", "--overwrite", "-j", str(params.num_jobs), *params.extra_args]  # speakers = folders
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    results = []
    for u in utts:
        hits = list(out.rglob(f"{u.clip_id}.TextGrid"))
        if not hits:
            results.append(Alignment(u.clip_id, len(u.wav) / 16000, failed="MFA wrote no TextGrid (see its log)"))
            continue
        results.append(alignment_from_textgrid(hits[0], u))
    return results
