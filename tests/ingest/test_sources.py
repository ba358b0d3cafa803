"""Source layouts: folder, the demo corpus (styles, known-bad inputs), GRID, LRS2."""

import json

import pandas as pd
import pytest

from headflow.ingest.sources import discover_demo, discover_folder, discover_grid, discover_lrs2, read_grid_align


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


def test_demo_source_reads_style_and_verdict_from_the_index(tmp_path):
    for rel in ("ann/ann_00.mp4", "ann/ann_01.mp4", "bad/two_faces.mp4", "bob/bob_00.mp4"):
        _touch(tmp_path / rel)
    pd.DataFrame({"source_path": ["ann/ann_00.mp4", "ann/ann_01.mp4", "bad/two_faces.mp4"],
                  "kind": ["good", "good", "bad"], "style": ["smiling", "neutral", None]}
                 ).to_parquet(tmp_path / "corpus.parquet")
    # Not in the index: the style comes from the clip's truth.json.
    _touch(tmp_path / "bob/bob_00.truth.json", json.dumps({"style": "restrained"}))
    items = {i.relpath: i for i in discover_demo(tmp_path, [".mp4"])}
    assert {r: (i.speaker_id, i.style, i.expected_reject) for r, i in items.items()} == {
        "ann/ann_00.mp4": ("ann", "smiling", False), "ann/ann_01.mp4": ("ann", "neutral", False),
        "bad/two_faces.mp4": ("bad", None, True), "bob/bob_00.mp4": ("bob", "restrained", False)}
    # A folder source knows nothing of styles.
    assert all(i.style is None and not i.expected_reject for i in discover_folder(tmp_path, [".mp4"]))
    # An index from before styles existed is named, with the fix.
    pd.DataFrame({"source_path": ["ann/ann_00.mp4"], "kind": ["good"]}).to_parquet(tmp_path / "corpus.parquet")
    with pytest.raises(ValueError, match="lacks columns \\['style'\\].*dvc repro demo_corpus"):
        discover_demo(tmp_path, [".mp4"])


def test_extensions_and_sidecars_match_case_insensitively(tmp_path):
    _touch(tmp_path / "s" / "A.MP4")
    _touch(tmp_path / "s" / "A.TXT", "upper case sidecar")
    _touch(tmp_path / "s" / "b.Ts")
    _touch(tmp_path / "s" / "c.3GP")
    items = discover_folder(tmp_path, ["MP4", ".ts", ".3gp"])   # a listed extension may lack its dot
    assert [(i.relpath, i.transcript) for i in items] == [("s/A.MP4", "upper case sidecar"), ("s/b.Ts", None),
                                                          ("s/c.3GP", None)]


def test_audit_root_sorts_every_other_file(tmp_path):
    from headflow.ingest.sources import audit_root

    for rel in ("s/a.mp4", "s/a.txt", "s/a.truth.json", "s/a.truth.npz", "s/orphan.lab", "README.md",
                "transcripts.json", "s/b.wmv", "s/a.wmv", "s/cover.png", "s/noext", ".git/config", "s/.DS_Store"):
        _touch(tmp_path / rel)
    items = discover_folder(tmp_path, [".mp4"])
    audit = audit_root(tmp_path, items, ("transcripts.json", None))
    rel = lambda paths: sorted(p.relative_to(tmp_path).as_posix() for p in paths)  # noqa: E731
    # may be media: quarantined; a.wmv beside a.mp4 is another video, not a sidecar of it
    assert rel(audit.unsupported) == ["s/a.wmv", "s/b.wmv", "s/cover.png", "s/noext"]
    assert rel(audit.other) == ["README.md", "s/a.truth.json", "s/a.truth.npz", "s/a.txt", "s/orphan.lab",
                                "transcripts.json"]                              # hidden files are not looked at


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "cp1252"])   # Notepad's UTF-8 with BOM, "Unicode", "ANSI"
def test_transcripts_json_is_decoded_like_a_transcript_file_and_damaged_entries_are_refused(tmp_path, encoding):
    for name in ("a", "b", "c", "d"):
        _touch(tmp_path / "s" / f"{name}.mp4")
    # b's and c's escapes decode to U+FFFD and NUL: text damaged before it was saved; d is decomposed (e + U+0301)
    text = '{"a": "caf\u00e9 na\u00efve", "b": "bad \\ufffd word", "s/c.mp4": "nul\\u0000", "d": "cafe\\u0301"}'
    (tmp_path / "transcripts.json").write_bytes(text.encode(encoding))
    items = {i.relpath: i for i in discover_folder(tmp_path, [".mp4"], transcripts_json="transcripts.json")}
    assert (items["s/a.mp4"].transcript, items["s/a.mp4"].transcript_problem) == ("caf\u00e9 na\u00efve", None)
    assert items["s/d.mp4"].transcript == "caf\u00e9"                          # NFC, as sidecar files are
    for rel, says in (("s/b.mp4", "entry 'b' of transcripts.json holds a replacement character U+FFFD at character 4"),
                      ("s/c.mp4", "entry 's/c.mp4' of transcripts.json holds a control character U+0000 at character 3")):
        assert items[rel].transcript is None and items[rel].transcript_problem.startswith(says), items[rel]
    _touch(tmp_path / "g" / "s1" / "x.mpg")                                    # GRID reads the same table
    (tmp_path / "g" / "t.json").write_bytes('{"x": "\\ufffd"}'.encode(encoding))
    (grid,) = discover_grid(tmp_path / "g", [".mpg"], transcripts_json="t.json")
    assert grid.transcript is None and "U+FFFD" in grid.transcript_problem


def test_transcripts_json_that_no_encoding_decodes_is_refused_naming_the_encodings(tmp_path):
    from headflow.ingest.transcripts import TranscriptEncodingError

    _touch(tmp_path / "s" / "a.mp4")
    (tmp_path / "t.json").write_bytes(b'{"a": "abc \x81\x8d"}')                # invalid UTF-8, undefined in cp1252
    with pytest.raises(TranscriptEncodingError, match="utf-8: byte 0x81 .*cp1252: byte 0x81"):
        discover_folder(tmp_path, [".mp4"], transcripts_json="t.json")
    (tmp_path / "t.json").write_text('{"a": ')
    with pytest.raises(ValueError, match="not valid JSON"):
        discover_folder(tmp_path, [".mp4"], transcripts_json="t.json")
