"""The Montreal Forced Aligner backend: a clear error without `mfa`, and its TextGrids read back."""

import numpy as np
import pandas as pd
import pytest

from headflow.align.builtin import UtteranceInput
from headflow.align.mfa import MfaNotFound, alignment_from_textgrid, find_mfa, write_corpus
from headflow.align.params import AlignParams, MfaParams
from headflow.align.run import run_align


def test_missing_mfa_says_how_to_install_or_what_to_choose(tmp_path):
    with pytest.raises(MfaNotFound) as err:
        find_mfa("mfa-not-installed-here")
    text = str(err.value)
    assert "conda install -c conda-forge montreal-forced-aligner" in text and "align.backend: builtin" in text


def test_stage_with_mfa_backend_fails_clearly_when_absent(tmp_path):
    import soundfile as sf

    sf.write(tmp_path / "a.wav", np.zeros(16000, np.float32), 16000)
    clips = pd.DataFrame([{"clip_id": "a-0000000000", "source_path": "a.mp4", "transcript": "hello",
                           "audio_path": "a.wav", "n_frames": 25, "speaker_id": "s1"}])
    params = AlignParams(backend="mfa", mfa=MfaParams(command="mfa-not-installed-here"), workers=1)
    with pytest.raises(MfaNotFound, match="conda-forge"):
        run_align(clips, params, tmp_path / "out", project_root=tmp_path, progress=False)


def test_corpus_layout_is_speaker_folders_with_wav_and_lab(tmp_path):
    utt = UtteranceInput("c1-0000000000", np.zeros(1600, np.float32), ["hello", "world"], [None, None])
    write_corpus([utt], {"c1-0000000000": "spk"}, tmp_path)
    assert (tmp_path / "spk/c1-0000000000.lab").read_text() == "hello world\n"
    assert (tmp_path / "spk/c1-0000000000.wav").is_file()


@pytest.mark.shared
def test_reads_mfa_textgrids(shared_dir):
    words = "this is the acoustic corpus".split()
    al = alignment_from_textgrid(shared_dir / "data/mfa/acoustic_corpus.TextGrid",
                                 UtteranceInput("acoustic_corpus", np.zeros(1), words, [None] * 5))
    assert al.words[0] == (1.05, 1.2, "this")
    assert al.phones[:3] == [(0.0, 1.05, "SIL", -1), (1.05, 1.06, "DH", 0), (1.06, 1.11, "IH", 0)]
