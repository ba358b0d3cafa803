"""Transcript decoding: every BOM, BOM-less UTF-16/32, strict UTF-8, legacy code pages, refusals."""

import codecs

import pytest

from headflow.ingest.transcripts import TranscriptEncodingError, decode_transcript, read_transcript

TEXT = "Caf\u00e9 \u2019twas na\u00efve \u2014 \u00bfs\u00ed?"   # accents, curly apostrophe, dash: outside ASCII


@pytest.mark.parametrize("data, encoding", [
    (TEXT.encode("utf-8"), "utf-8"),
    (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8 (BOM)"),
    (TEXT.encode("utf-16"), "utf-16 (BOM)"),                              # Python writes LE with a BOM
    (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16-be (BOM)"),
    (TEXT.encode("utf-32"), "utf-32 (BOM)"),
    (codecs.BOM_UTF32_BE + TEXT.encode("utf-32-be"), "utf-32-be (BOM)"),
    (TEXT.encode("utf-16-le"), "utf-16-le (no BOM)"),
    (TEXT.encode("utf-16-be"), "utf-16-be (no BOM)"),
    (TEXT.encode("utf-32-le"), "utf-32-le (no BOM)"),
    (TEXT.encode("cp1252"), "cp1252"),                                     # Windows "ANSI"
])
def test_every_encoding_gives_the_same_text(data, encoding):
    assert decode_transcript(data) == (TEXT, encoding)


def test_legacy_code_pages_are_tried_in_the_configured_order():
    cyrillic = "\u043f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440".encode("cp1251")
    assert decode_transcript(cyrillic, ["cp1251"]) == ("\u043f\u0440\u0438\u0432\u0435\u0442 \u043c\u0438\u0440", "cp1251")
    with pytest.raises(TranscriptEncodingError, match="utf-8: byte 0xef at offset 0"):
        decode_transcript(cyrillic, [])                                    # UTF only: refused, never replaced


@pytest.mark.parametrize("data, says", [
    (b"abc \x81\x8d def", "cp1252: byte 0x81 at offset 4"),        # undefined in Windows-1252
    (b"abc\x00def", "control character U+0000"),                  # NUL in otherwise valid UTF-8
    (codecs.BOM_UTF8 + b"caf\xe9", "utf-8 (BOM): byte 0xe9 at offset 3"),   # a BOM that lies is not second-guessed
    (b"bad \xef\xbf\xbd char", "replacement character U+FFFD"),   # text already damaged by a lossy decode
])
def test_undecodable_transcripts_are_refused_naming_the_encoding(data, says):
    with pytest.raises(TranscriptEncodingError, match="save it as UTF-8") as err:
        decode_transcript(data, source="clip.txt")
    assert says in str(err.value) and str(err.value).startswith("clip.txt: ")


def test_decoded_text_is_nfc_and_files_are_read_as_bytes(tmp_path):
    decomposed = "Cafe\u0301"                                             # e + combining acute
    path = tmp_path / "t.txt"
    path.write_bytes(decomposed.encode("utf-16"))
    assert read_transcript(path) == ("Caf\u00e9", "utf-16 (BOM)")


def test_the_cases_windows_notepad_unicode_file(shared_dir):
    path = shared_dir / "cases/media/utf16/lbax4n.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    text, encoding = read_transcript(path)
    assert (" ".join(text.split()), encoding) == ("lay blue at x four now", "utf-16 (BOM)")
