"""Source layouts: folder, GRID, LRS2; speaker-disjoint splits."""

import pytest

from headflow.ingest.ingest import assign_splits
from headflow.ingest.params import SplitParams
from headflow.ingest.sources import discover_folder, discover_grid, discover_lrs2, read_grid_align


def _touch(path, text=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_folder_source_speakers_and_sidecar_transcripts(tmp_path):
    _touch(tmp_path / "alice" / "a1.mp4")
    _touch(tmp_path / "alice" / "a1.txt", "  hello   world \n")
    _touch(tmp_path / "bob" / "b1.mov")
    _touch(tmp_path / "bob" / "b1.lab", "good day")
    _touch(tmp_path / "bob" / "notes.md")
    _touch(tmp_path / ".hidden" / "x.mp4")
    items = discover_folder(tmp_path, [".mp4", ".mov"])
    assert [(i.relpath, i.speaker_id, i.transcript, i.transcript_source) for i in items] == [
        ("alice/a1.mp4", "alice", "hello world", "txt"), ("bob/b1.mov", "bob", "good day", "lab")]


def test_grid_align_in_ticks_of_1_25000_s(tmp_path):
    align = _touch(tmp_path / "swwp2s.align", "0 12250 sil\n12250 19250 set\n19250 27250 white\n27250 30000 sp\n")
    assert read_grid_align(align) == (("set", 0.49, 0.77), ("white", 0.77, 1.09))
    with pytest.raises(ValueError, match="expected 'start end word'"):
        read_grid_align(_touch(tmp_path / "bad.align", "0 12 sil extra\n"))


def test_grid_layouts_speaker_folders_and_alignments(tmp_path):
    _touch(tmp_path / "s1" / "bbaf2n.mpg")
    _touch(tmp_path / "alignments" / "s1" / "bbaf2n.align", "0 100 sil\n100 200 bin\n200 300 blue\n")
    (item,) = discover_grid(tmp_path, [".mpg"])
    assert item.speaker_id == "s1" and item.transcript == "bin blue" and item.transcript_source == "align"
    assert item.words[0] == ("bin", 100 / 25000, 200 / 25000)


def test_lrs2_file_list_and_transcripts(tmp_path):
    _touch(tmp_path / "main" / "600" / "00001.mp4")
    _touch(tmp_path / "main" / "600" / "00001.txt",
           "Text:  HELLO THERE\nConf:  4\n\nWORD START END ASDSCORE\nHELLO 0.10 0.40 5.0\nTHERE 0.40 0.80 4.2\n")
    _touch(tmp_path / "test.txt", "600/00001 NF\n600/00002\n")
    items = discover_lrs2(tmp_path, "test.txt")
    assert [i.relpath for i in items] == ["600/00002.mp4", "main/600/00001.mp4"]
    found = items[1]
    assert found.transcript == "hello there" and found.words == (("hello", 0.1, 0.4), ("there", 0.4, 0.8))
    assert not items[0].path.exists()   # listed but missing: ingest quarantines it as unreadable


def test_splits_are_speaker_disjoint_seeded_and_cover_every_split():
    speakers = [f"s{i}" for i in range(10)]
    a = assign_splits(speakers, SplitParams(seed=1, val=0.2, test=0.2))
    assert a == assign_splits(list(reversed(speakers)), SplitParams(seed=1, val=0.2, test=0.2))
    assert sorted(a.values()).count("val") == 2 and sorted(a.values()).count("test") == 2
    assert a != assign_splits(speakers, SplitParams(seed=2, val=0.2, test=0.2))
    few = assign_splits(["x", "y", "z"], SplitParams(val=0.1, test=0.1))
    assert sorted(few.values()) == ["test", "train", "val"]
