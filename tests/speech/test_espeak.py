"""espeak-ng synthesis with ground-truth phone and word timings (headflow.speech.espeak)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("espeakng_loader")

from headflow.speech.espeak import ESPEAK_TO_ARPABET, available_voices, synthesize  # noqa: E402

ARPABET = set("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W "
              "Y Z ZH".split())

# Harvard sentences (public domain), lists 1-5.
HARVARD = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It's easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
    "The boy was there when the sun rose.", "A rod is used to catch pink salmon.",
    "The source of the huge river is the clear spring.", "Kick the ball straight and follow through.",
    "Help the woman get back to her feet.", "A pot of tea helps to pass the evening.",
    "Smoky fires lack flame and heat.", "The soft cushion broke the man's fall.",
    "The salt breeze came across from the sea.", "The girl at the booth sold fifty bonds.",
    "The small pup gnawed a hole in the sock.", "The fish twisted and turned on the bent hook.",
    "Press the pants and sew a button on the vest.", "The swan dive was far short of perfect.",
    "The beauty of the view stunned the young boy.", "Two blue fish swam in the tank.",
    "Her purse was full of useless trash.", "The colt reared and threw the tall rider.",
    "It snowed, rained, and hailed the same morning.", "Read verse out loud for pleasure.",
    "Hoist the load to your left shoulder.", "Take the winding path to reach the lake.",
    "Note closely the size of the gas tank.", "Wipe the grease off his dirty face.",
    "Mend the coat before you go out.", "The wrist was badly strained and hung limp.",
    "The stray cat gave birth to kittens.", "The young girl gave no clear response.",
    "The meal was cooked before the bell rang.", "What joy there is in living.",
    "A king ruled the state in the early days.", "The ship was torn apart on the sharp reef.",
    "Sickness kept him home the third week.", "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.", "Lift the square stone over the fence.",
    "The rope will bind the seven books at once.", "Hop over the fence and plunge in.",
    "The friendly gang left the drug store.", "Mesh wire keeps chicks inside.",
]


def _check_tiling(utt) -> None:
    phones = utt.phones
    assert phones[0].start == 0.0
    assert phones[-1].end == utt.duration
    assert all(a.end == b.start for a, b in zip(phones, phones[1:]))
    assert all(p.end > p.start for p in phones)
    assert not any(a.label == b.label == "SIL" for a, b in zip(phones, phones[1:]))


def test_phones_tile_the_duration_and_audio_is_well_formed():
    utt = synthesize(HARVARD[0], sample_rate=16000, lead_silence=0.25, tail_silence=0.4)
    _check_tiling(utt)
    assert utt.audio.dtype == np.float32 and utt.audio.ndim == 1
    assert np.abs(utt.audio).max() <= 1.0 and np.abs(utt.audio).max() > 0.1
    assert utt.sample_rate == 16000 and utt.duration == len(utt.audio) / 16000
    assert utt.phones[0].label == "SIL" and utt.phones[0].end >= 0.25
    assert utt.phones[-1].label == "SIL" and utt.phones[-1].end - utt.phones[-1].start >= 0.4
    assert [p.label for p in utt.phones if p.label != "SIL"][:5] == ["DH", "AH", "B", "ER", "CH"]


@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
def test_all_sentences_give_one_word_per_token_and_arpabet_labels(voice):
    for sentence in HARVARD:
        utt = synthesize(sentence, voice=voice, rate_wpm=170)
        _check_tiling(utt)
        tokens = sentence.split()
        assert [w.label for w in utt.words] == [t.strip(".,").lower() for t in tokens], sentence
        assert {p.label for p in utt.phones} <= ARPABET | {"SIL"}, sentence
        starts = {p.start for p in utt.phones if p.label != "SIL"}
        ends = {p.end for p in utt.phones if p.label != "SIL"}
        for a, b in zip(utt.words, utt.words[1:]):
            assert a.start < a.end <= b.start, (sentence, a, b)
        assert all(w.start in starts and w.end in ends for w in utt.words), sentence


def test_mapping_targets_are_arpabet():
    assert set(ESPEAK_TO_ARPABET.values()) <= ARPABET | {"SIL"}
    assert ESPEAK_TO_ARPABET["3:"] == "ER" and ESPEAK_TO_ARPABET["tS"] == "CH" and ESPEAK_TO_ARPABET["_:"] == "SIL"


def test_same_inputs_give_identical_bytes_and_timings():
    first = synthesize(HARVARD[2], voice="en-us+f3", rate_wpm=155)
    synthesize(HARVARD[5], voice="en-gb", rate_wpm=190)  # espeak's state would carry over from this call
    second = synthesize(HARVARD[2], voice="en-us+f3", rate_wpm=155)
    assert first.audio.tobytes() == second.audio.tobytes()
    assert first.phones == second.phones and first.words == second.words


def test_speech_energy_lies_in_the_phones_not_the_silences():
    utt = synthesize(HARVARD[12], voice="en-us", rate_wpm=160, lead_silence=0.3, tail_silence=0.3)
    sr, x = utt.sample_rate, utt.audio.astype(np.float64)

    def power(iv):
        return float(np.mean(x[int(round(iv.start * sr)):int(round(iv.end * sr))] ** 2))

    speech = np.mean([power(p) for p in utt.phones if p.label != "SIL"])
    assert power(utt.phones[0]) < 1e-3 * speech and power(utt.phones[-1]) < 1e-3 * speech
    vowels = [power(p) for p in utt.phones if p.label in {"AH", "IH", "IY", "UW", "ER", "AO"}]
    assert min(vowels) > 0.05 * speech
    # Every silence espeak itself put inside the utterance is (near) silent, too.
    assert all(power(p) < 0.05 * speech for p in utt.phones if p.label == "SIL")


def test_faster_rate_gives_shorter_speech():
    slow = synthesize(HARVARD[6], rate_wpm=130)
    fast = synthesize(HARVARD[6], rate_wpm=220)
    assert fast.duration < 0.8 * slow.duration
    assert fast.words[-1].end - fast.words[0].start < slow.words[-1].end - slow.words[0].start


def test_unknown_voice_raises_value_error_naming_voices():
    assert {"en-us", "en-gb"} <= set(available_voices())
    with pytest.raises(ValueError, match="en-us"):
        synthesize("Hello there.", voice="xx-nowhere")
    with pytest.raises(ValueError, match="f3"):
        synthesize("Hello there.", voice="en-us+nosuchvariant")
