"""Pronunciations: CMU dictionary without stress, espeak-ng for unknown words, user dictionaries first."""

import pytest

from headflow.align.lexicon import SPN, Lexicon, is_marker, parse_dictionary, read_dictionary, to_arpabet, words_of


def test_words_are_normalised():
    assert words_of('"Hello," she said -- don\u2019t   stop! 42.') == ["hello", "she", "said", "don't", "stop", "42"]


def test_user_dictionary_words_are_matched_before_normalisation():
    user = {"wit'", "rock'n'roll", "a.m.", "-ish", "o'"}
    text = "Set white wit' p two, \u2018rock\u2019n\u2019roll\u2019 at 9 a.m., wit'! -ish o' wit"
    assert words_of(text, user) == ["set", "white", "wit'", "p", "two", "rock'n'roll", "at", "9", "a.m.", "wit'",
                                    "-ish", "o'", "wit"]
    # without the dictionary the same tokens normalise as before
    assert words_of(text)[2] == "wit" and words_of(text)[8] == "a.m" and words_of(text)[10] == "ish"
    found = Lexicon(user={"wit'": [("W", "IH", "TH")]}).lookup(words_of("wit' wit", {"wit'"}))
    assert found["wit'"] == ([("W", "IH", "TH")], "user") and found["wit"][1] == "cmudict"


def test_bracketed_noise_markers_are_spoken_noise():
    text = "[noise] the <VOCNOISE> birch {laugh} canoe (inaudible) [background noise] slid"
    words = words_of(text)
    assert words == ["[noise]", "the", "<vocnoise>", "birch", "{laugh}", "canoe", "(inaudible)",
                     "[background_noise]", "slid"]
    assert [w for w in words if is_marker(w)] == ["[noise]", "<vocnoise>", "{laugh}", "(inaudible)",
                                                  "[background_noise]"]
    found = Lexicon(user={"{laugh}": [("HH", "AH")]}).lookup(words)
    assert found["[noise]"] == ([(SPN,)], "marker") and found["<vocnoise>"] == ([(SPN,)], "marker")
    assert found["{laugh}"] == ([("HH", "AH")], "user")        # the user dictionary still wins
    assert not is_marker("[unbalanced") and not is_marker("(x]")


def test_cmu_dictionary_without_stress_and_espeak_for_oov():
    found = Lexicon().lookup(["hello", "the", "yknow", "fifty-one"])
    assert found["hello"] == ([("HH", "AH", "L", "OW"), ("HH", "EH", "L", "OW")], "cmudict")
    assert found["the"][0][0] == ("DH", "AH")
    # not in CMU: espeak's letter-to-sound rules, mapped to ARPAbet
    prons, src = found["yknow"]
    assert src == "espeak" and prons[0][-2:] == ("N", "OW")
    assert found["fifty-one"] == ([("F", "IH", "F", "T", "IY", "W", "AH", "N")], "cmudict")  # parts joined


def test_user_dictionary_overrides_in_arpabet_and_mfa_ipa_formats():
    plain = parse_dictionary("HELLO  HH EH1 L OW0\nhello hh ah l ow\nfoo\tbar\nbad  XX Q\n")
    assert plain["hello"] == [("HH", "EH", "L", "OW"), ("HH", "AH", "L", "OW")]
    assert "bad" not in plain and "foo" not in plain  # unknown phones: entry ignored (logged), word falls back
    mfa2 = parse_dictionary("pitched\t0.99\t0.14\t1.0\t1.0\tpʰ ɪ tʃ t\nbutton\t1.0\tb ɐ ʔ n̩\n[laughter]\tspn\n")
    assert mfa2["pitched"] == [("P", "IH", "CH", "T")]
    assert mfa2["button"] == [("B", "AH", "T", "AH", "N")]  # syllabic n -> AH N
    assert mfa2["[laughter]"] == [(SPN,)]
    found = Lexicon(user=plain).lookup(["hello", "bad"])
    assert found["hello"] == ([("HH", "EH", "L", "OW"), ("HH", "AH", "L", "OW")], "user")
    assert found["bad"][1] == "cmudict"


def test_ipa_mapping_drops_diacritics():
    assert to_arpabet("tʲ") == ("T",) and to_arpabet("ɑː") == ("AA",) and to_arpabet("kʷ") == ("K",)
    assert to_arpabet("ow") == ("OW",) and to_arpabet("IY1") == ("IY",) and to_arpabet("us") is None


def test_unpronounceable_words_come_back_as_none(monkeypatch):
    import headflow.speech.espeak as speech

    monkeypatch.setattr(speech, "phonemize", lambda words, voice: [None for _ in words])
    assert Lexicon().lookup(["zzxqj"])["zzxqj"] == (None, "none")


@pytest.mark.shared
def test_shared_mfa_dictionaries(shared_dir):
    reduced = read_dictionary(shared_dir / "data/mfa/english_us_mfa_reduced.dict")
    assert reduced["acoustic"] == [("AH", "K", "UW", "S", "T", "IH", "K")]
    assert len(reduced) > 190
    plain = read_dictionary(shared_dir / "data/mfa/test_acoustic.txt")
    assert plain["this"] == [("DH", "IH", "S")] and "corpus" not in plain  # 'k ao r p us': 'us' is no phone
    with pytest.raises(FileNotFoundError, match="align.dictionary"):
        read_dictionary(shared_dir / "data/mfa/missing.dict")
