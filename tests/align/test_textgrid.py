"""TextGrids: MFA layout written in Praat's long format, read back; real MFA output read."""

import pytest

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
