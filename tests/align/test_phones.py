"""The phone index table, StyleTalk's phindex mapping and the frame-labelling rule."""

import pytest

from headflow.align.phones import (PHONE_INDEX, PHONES, SIL, STYLETALK_INDEX, STYLETALK_PHINDEX, frame_phones,
                                   normalize_phone)


def test_index_table_is_sil_then_arpabet_in_alphabetical_order():
    assert len(PHONES) == 40 and PHONE_INDEX[SIL] == 0
    assert PHONES[1:4] == ("AA", "AE", "AH") and PHONES[-1] == "ZH"
    assert list(PHONES[1:]) == sorted(PHONES[1:])


def test_styletalk_mapping_matches_phindex_json():
    # StyleTalk's phindex.json: alphabetical 41 symbols incl. NSN (24) and SIL (31)
    assert len(STYLETALK_PHINDEX) == 41
    assert STYLETALK_PHINDEX["AA"] == 0 and STYLETALK_PHINDEX["NG"] == 23 and STYLETALK_PHINDEX["NSN"] == 24
    assert STYLETALK_PHINDEX["OW"] == 25 and STYLETALK_PHINDEX["SIL"] == 31 and STYLETALK_PHINDEX["ZH"] == 40
    assert STYLETALK_INDEX[PHONE_INDEX[SIL]] == 31 and STYLETALK_INDEX[PHONE_INDEX["T"]] == 32
    assert sorted(STYLETALK_INDEX.tolist()) == sorted(set(range(41)) - {24})


def test_normalize_phone_strips_stress_and_folds_silences():
    assert normalize_phone("IH0") == "IH" and normalize_phone("ow1") == "OW"
    assert {normalize_phone(s) for s in ["sil", "sp", "spn", "", "SIL"]} == {SIL}
    with pytest.raises(KeyError, match="not an ARPAbet phone"):
        normalize_phone("ɪ")


def test_frame_takes_the_phone_at_its_centre():
    # 25 fps: centres 0.02, 0.06, 0.10, 0.14, 0.18, 0.22; M is [0.10, 0.18): 0.10 is in (half-open start),
    # 0.18 is out; the gap [0.18, 0.20) and everything after 0.21 are SIL
    intervals = [(0.0, 0.10, SIL), (0.10, 0.18, "M"), (0.20, 0.21, "AA")]
    assert frame_phones(intervals, 6, 25.0) == [SIL, SIL, "M", "M", SIL, SIL]
    # a phone shorter than a frame is seen only when it covers a centre
    assert frame_phones([(0.0, 0.019, "P"), (0.019, 0.021, "B")], 1) == ["B"]
