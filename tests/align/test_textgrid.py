"""TextGrids: MFA layout written in Praat's long format, read back; UTF-16, short format, real MFA output."""

import os

import pytest
from praatio import textgrid as praatio_textgrid

from headflow.align.textgrid import TextGrid, alignment_textgrid, format_textgrid, parse_textgrid, read_textgrid, write_textgrid


def test_round_trip_fills_gaps_with_empty_intervals(tmp_path):
    grid = alignment_textgrid(words=[(0.25, 0.6, "hello"), (0.6, 1.0, 'say "hi"')],
                              phones=[(0.0, 0.25, "SIL"), (0.25, 0.4, "HH"), (0.4, 0.6, "AH"), (0.6, 1.0, "S")],
                              duration=1.2)
    write_textgrid(grid, tmp_path / "a.TextGrid")
    back = read_textgrid(tmp_path / "a.TextGrid")
    assert (back.xmin, back.xmax) == (0.0, 1.2) and list(back.tiers) == ["words", "phones"]
    assert back.tiers["words"] == [(0.0, 0.25, ""), (0.25, 0.6, "hello"), (0.6, 1.0, 'say "hi"'), (1.0, 1.2, "")]
    assert back.tiers["phones"][0] == (0.0, 0.25, "") and back.tiers["phones"][-1] == (1.0, 1.2, "")
    assert format_textgrid(back) == (tmp_path / "a.TextGrid").read_text()


def test_short_format_reads_the_same():
    short = 'File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n1.5\n<exists>\n1\n"IntervalTier"\n"phones"\n' \
            '0\n1.5\n2\n0\n0.5\n""\n0.5\n1.5\n"AA1"\n'
    assert parse_textgrid(short).tiers == {"phones": [(0.0, 0.5, ""), (0.5, 1.5, "AA1")]}
    with pytest.raises(ValueError, match="not a Praat TextGrid"):
        parse_textgrid("hello")
    assert isinstance(parse_textgrid(format_textgrid(TextGrid(0, 1))), TextGrid)


@pytest.mark.shared
def test_reads_real_mfa_output(shared_dir):
    grid = read_textgrid(shared_dir / "data/mfa/acoustic_corpus.TextGrid")
    assert grid.xmax == pytest.approx(26.72325)
    assert len(grid.tiers["words"]) == 71 and len(grid.tiers["phones"]) == 216
    assert grid.tiers["phones"][1] == (1.05, 1.06, "DH") and grid.tiers["words"][1] == (1.05, 1.2, "this")
    # a tier tiles the file: each interval starts where the previous ended
    ph = grid.tiers["phones"]
    assert all(a[1] == b[0] for a, b in zip(ph, ph[1:]))


# A two-tier grid with a non-ASCII label, in Praat's long format (Praat saves such files as UTF-16).
LONG_IPA = """File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0
xmax = 0.8
tiers? <exists>
size = 2
item []:
    item [1]:
        class = "IntervalTier"
        name = "words"
        xmin = 0
        xmax = 0.8
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = 0.3
            text = ""
        intervals [2]:
            xmin = 0.3
            xmax = 0.8
            text = "café"
    item [2]:
        class = "IntervalTier"
        name = "phones"
        xmin = 0
        xmax = 0.8
        intervals: size = 2
        intervals [1]:
            xmin = 0
            xmax = 0.3
            text = ""
        intervals [2]:
            xmin = 0.3
            xmax = 0.8
            text = "ɑː"
"""


@pytest.mark.parametrize("encoding, bom", [("utf-16-be", b"\xfe\xff"), ("utf-16-le", b"\xff\xfe")])
def test_reads_utf16_with_bom_and_non_ascii_labels(tmp_path, encoding, bom):
    path = tmp_path / "praat.TextGrid"
    path.write_bytes(bom + LONG_IPA.encode(encoding))    # Praat writes big-endian; both orders occur
    grid = read_textgrid(path)
    assert grid.tiers == {"words": [(0.0, 0.3, ""), (0.3, 0.8, "café")], "phones": [(0.0, 0.3, ""), (0.3, 0.8, "ɑː")]}


def test_reads_utf8_with_and_without_bom_and_rejects_other_encodings(tmp_path):
    (tmp_path / "a.TextGrid").write_bytes(LONG_IPA.encode("utf-8"))
    (tmp_path / "b.TextGrid").write_bytes(b"\xef\xbb\xbf" + LONG_IPA.encode("utf-8"))
    assert read_textgrid(tmp_path / "a.TextGrid") == read_textgrid(tmp_path / "b.TextGrid")
    assert read_textgrid(tmp_path / "a.TextGrid").tiers["words"][1][2] == "café"
    (tmp_path / "c.TextGrid").write_bytes(LONG_IPA.replace("ɑː", "a").encode("latin-1"))   # "é" is 0xe9
    with pytest.raises(ValueError, match="c.TextGrid.*UTF-8"):
        read_textgrid(tmp_path / "c.TextGrid")


def test_reads_mfa_short_format():
    # MFA's `--output_format short_textgrid` (praatio's short writer; the layout of MFA's
    # cold_corpus.TextGrid): header, then per tier its class, name, range, count and triples.
    short = ('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n1.7\n<exists>\n2\n'
             '"IntervalTier"\n"words"\n0\n1.7\n3\n0\n1.24\n""\n1.24\n1.67\n"uh"\n1.67\n1.7\n""\n'
             '"IntervalTier"\n"phones"\n0\n1.7\n3\n0\n1.24\n""\n1.24\n1.67\n"AH0"\n1.67\n1.7\n""\n')
    grid = parse_textgrid(short)
    assert (grid.xmin, grid.xmax) == (0.0, 1.7)
    assert grid.tiers == {"words": [(0.0, 1.24, ""), (1.24, 1.67, "uh"), (1.67, 1.7, "")],
                          "phones": [(0.0, 1.24, ""), (1.24, 1.67, "AH0"), (1.67, 1.7, "")]}


def test_times_in_exponent_notation_and_tiny_intervals_round_trip(tmp_path):
    # Praat writes %.17g, so a boundary at 50 us reads 5.0000000000000002e-05; praatio's long-format
    # reader alone fails on it. Our own writer (praatio's repr) writes it as 5e-05.
    text = LONG_IPA.replace("xmax = 0.3", "xmax = 5.0000000000000002e-05").replace(
        "xmin = 0.3", "xmin = 5.0000000000000002e-05")
    assert parse_textgrid(text).tiers["phones"] == [(0.0, 5e-05, ""), (5e-05, 0.8, "ɑː")]
    grid = TextGrid(0.0, 0.5, {"phones": [(0.0, 0.00005, "AA"), (0.00005, 0.5, "B")]})
    write_textgrid(grid, tmp_path / "t.TextGrid")
    assert "e-05" in (tmp_path / "t.TextGrid").read_text()
    assert read_textgrid(tmp_path / "t.TextGrid").tiers == grid.tiers


def test_written_file_is_what_praatio_and_mfa_read(tmp_path):
    grid = alignment_textgrid(words=[(0.1, 0.5, "café")], phones=[(0.1, 0.30000000000000004, "K"), (0.3, 0.5, "AE")],
                              duration=0.75)
    write_textgrid(grid, tmp_path / "x.TextGrid")
    assert (tmp_path / "x.TextGrid").read_bytes().decode("utf-8").startswith('File type = "ooTextFile"')
    tg = praatio_textgrid.openTextgrid(str(tmp_path / "x.TextGrid"), includeEmptyIntervals=True)
    assert tg.tierNames == ("words", "phones")
    # times rounded to the microsecond: 0.30000000000000004 is written (and read) as 0.3
    assert [tuple(e) for e in tg.getTier("phones").entries] == [(0.0, 0.1, ""), (0.1, 0.3, "K"), (0.3, 0.5, "AE"),
                                                                 (0.5, 0.75, "")]
    assert [tuple(e) for e in tg.getTier("words").entries][1] == (0.1, 0.5, "café")


def test_overlapping_intervals_are_cut_and_writes_are_atomic(tmp_path):
    grid = TextGrid(0.0, 1.0, {"phones": [(0.5, 0.9, "B"), (0.2, 0.6, "A"), (0.9, 1.4, "C")]})
    write_textgrid(grid, tmp_path / "o.TextGrid")
    # sorted, B starts where A ends, C is cut at xmax
    assert read_textgrid(tmp_path / "o.TextGrid").tiers["phones"] == [
        (0.0, 0.2, ""), (0.2, 0.6, "A"), (0.6, 0.9, "B"), (0.9, 1.0, "C")]
    assert os.listdir(tmp_path) == ["o.TextGrid"]          # no temporary file left behind
    with pytest.raises(ValueError, match="truncated or malformed"):
        parse_textgrid('File type = "ooTextFile"\nObject class = "TextGrid"\n\nxmin = 0\nxmax = \nitem [')
