"""Read transcript files in whatever encoding an editor saved them, or say which encoding is wrong.

Order (first that applies wins):
1. A byte-order mark says the encoding: UTF-32 LE/BE, UTF-8 (`utf-8-sig`, Windows Notepad's
   "UTF-8 with BOM"), UTF-16 LE/BE (Notepad's "Unicode" / "Unicode big endian"). The rest of the
   file must decode strictly in it.
2. No BOM but NUL bytes: UTF-16 or UTF-32 without a BOM, when the NULs sit where that encoding puts
   the high bytes of ASCII text (every other byte, or three of every four), decoded strictly.
3. Strict UTF-8 (which ASCII is).
4. Only when the bytes are not valid UTF-8: each legacy encoding of `legacy` in turn
   (`ingest.transcript_encodings`; default Windows-1252, the Western-European Windows default that
   Notepad and Word use for "ANSI"), strictly: a byte the code page leaves undefined fails it. (Valid
   UTF-8 with bad characters is refused, not re-read as mojibake.)
The decoded text must hold no control characters (NUL included) and no U+FFFD: text that does was
not decoded right (e.g. a UTF-16 file without BOM whose NULs look like UTF-8), and is refused.
Nothing is ever decoded with replacement characters.

Reference: the BOM byte sequences are Unicode 15, section 23.8 ("Byte Order Mark"); Python's codecs
`utf-8-sig`, `utf-16`, `utf-32` strip them.
"""

from __future__ import annotations

import codecs
import unicodedata
from pathlib import Path

DEFAULT_LEGACY = ("cp1252",)
"""Legacy code pages tried after UTF-8 by default."""

_BOMS = (  # UTF-32 first: its little-endian BOM starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32 (BOM)"), (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32-be (BOM)"),
    (codecs.BOM_UTF8, "utf-8", "utf-8 (BOM)"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16 (BOM)"), (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be (BOM)"),
)
_ALLOWED_CONTROLS = frozenset("\t\n\r\f\v")


class TranscriptEncodingError(ValueError):
    """A transcript file that no accepted encoding decodes into clean text; the message says what was tried."""


def _clean(text: str) -> str | None:
    """What is wrong with decoded text (a control character or U+FFFD), or None when it is clean."""
    for i, ch in enumerate(text):
        if ch == "\ufffd":
            return f"a replacement character U+FFFD at character {i}"
        if unicodedata.category(ch) == "Cc" and ch not in _ALLOWED_CONTROLS:
            return f"a control character U+{ord(ch):04X} at character {i}"
    return None


def text_problem(text: str) -> str | None:
    """What makes already-decoded text unfit as a transcript (a control character other than tab, line and
    page breaks, or U+FFFD, with its character index), or None when it is clean. For text that arrives
    decoded (a JSON table's entries), checked as `decode_transcript` checks the files it decodes."""
    return _clean(text)


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _bomless_wide(data: bytes) -> str | None:
    """The UTF-16/32 codec whose ASCII NUL pattern `data` shows (no BOM), or None."""
    n = len(data)
    if n >= 4 and n % 4 == 0:
        for codec, zeros in (("utf-32-le", (1, 2, 3)), ("utf-32-be", (0, 1, 2))):
            if all(data[k::4].count(0) >= 0.9 * (n // 4) for k in zeros):
                return codec
    if n >= 2 and n % 2 == 0:
        odd, even = data[1::2].count(0), data[0::2].count(0)
        if odd >= 0.9 * (n // 2) > even:
            return "utf-16-le"
        if even >= 0.9 * (n // 2) > odd:
            return "utf-16-be"
    return None


def decode_transcript(data: bytes, legacy: tuple[str, ...] | list[str] = DEFAULT_LEGACY,
                      source: str = "<transcript>") -> tuple[str, str]:
    """Decode a transcript file's bytes (see the module docstring for the order).

    Args:
        data: the file's bytes.
        legacy: code pages tried, in order, after strict UTF-8 (Python codec names, e.g. "cp1252",
            "cp1251", "shift_jis"); empty: UTF only.
        source: what to name in the error (the file's path).

    Returns:
        (text, encoding): the text NFC-normalised, and the encoding used, e.g. "utf-8",
        "utf-16 (BOM)", "utf-16-le (no BOM)", "cp1252".

    Raises:
        TranscriptEncodingError: no encoding gives clean text; the message names what each gave and
            asks for UTF-8.
    """
    tried: list[str] = []

    def attempt(codec: str, payload: bytes, name: str) -> tuple[str, str] | None:
        try:
            text = payload.decode(codec, errors="strict")
        except UnicodeDecodeError as err:
            tried.append(f"{name}: byte 0x{payload[err.start]:02x} at offset {err.start} is invalid ({err.reason})")
            return None
        problem = _clean(text)
        if problem:
            tried.append(f"{name}: decodes to {problem}")
            return None
        return unicodedata.normalize("NFC", text), name

    for bom, codec, name in _BOMS:
        if data.startswith(bom):
            found = attempt(codec, data[len(bom):], name)
            if found:
                return found
            break   # a BOM that lies: nothing else is trustworthy either
    else:
        wide = _bomless_wide(data) if b"\x00" in data else None
        candidates = ([(wide, f"{wide} (no BOM)")] if wide else []) + [("utf-8", "utf-8")] + [(c, c) for c in legacy]
        for codec, name in candidates:
            if codec in legacy and _valid_utf8(data):
                break
            try:
                found = attempt(codec, data, name)
            except LookupError:
                raise TranscriptEncodingError(f"{source}: unknown encoding {codec!r} in ingest.transcript_encodings; "
                                              "use a Python codec name such as 'cp1252'") from None
            if found:
                return found
    raise TranscriptEncodingError(f"{source}: not decodable as clean text ({'; '.join(tried)}); save it as UTF-8 "
                                  "(or add its code page to ingest.transcript_encodings)")


def read_transcript(path: str | Path, legacy: tuple[str, ...] | list[str] = DEFAULT_LEGACY) -> tuple[str, str]:
    """`decode_transcript` of a file's bytes. Raises TranscriptEncodingError (and OSError for I/O)."""
    return decode_transcript(Path(path).read_bytes(), legacy, str(path))
