"""Offline English text-to-speech through espeak-ng, with exact phone and word timings.

The audio comes from the espeak-ng library shipped by ``espeakng-loader`` (called through ctypes) and
the timings from espeak's own synthesis, never from an aligner, so they can serve as ground truth.

Where the timings come from (all in samples at espeak's native 22050 Hz, before resampling):

* Phoneme events (``espeakEVENT_PHONEME``) carry ``sample``, the exact index of the first sample the
  phoneme's own sound occupies (``audio_position`` is the same truncated to whole ms).
* espeak's phoneme-alignment output hook fires when synthesis of each phoneme *begins*; counting samples
  through the per-sample hooks gives its exact position. The gap from there to the phoneme event is a
  silent pre-pause: for a stop or affricate it is the closure and belongs to the stop (unless it follows
  a pause, where closure and pause are one silence), otherwise it is labelled SIL.
* For a vowel after a liquid or nasal espeak emits the event only after the "vowel start" sequence, which
  also holds the consonant's murmur and release (for [m n N j] all of it), so the event is ~20-45 ms late.
  There the boundary is put where a two-segment fit of 15 ms log band energies splits the span between
  the consonant's event and the vowel's event (the nasal release / liquid-vowel change).
* Word events give the word structure (which phones belong to which word); a word spans its phones.
* Klatt-based variants do not drive the per-sample hooks; there the pre-pause is the run of zero samples
  before the event.

espeak keeps global wave-generator state (pitch flutter, gain, ...) from one call to the next, which
shifts timings by a few samples. To make the same inputs give bit-identical output, each synthesis runs
in a child forked from a process whose espeak was initialised but never used (POSIX only).
"""

from __future__ import annotations

import ctypes
import os
import pickle
import re
import string
import threading
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

__all__ = ["ESPEAK_TO_ARPABET", "Interval", "Utterance", "available_variants", "available_voices", "phonemize",
           "synthesize"]

SIL = "SIL"
_PAUSES = ("", "_", "_:", "_!", "_|", "_::", "_;_", "||", "_^_")
_V = {  # vowels; diphthongs and r-coloured vowels map to their nearest single ARPAbet phone
    "@": "AH", "@2": "AH", "@5": "AH", "@-": "AH", "@#": "AH", "a#": "AH", "a#2": "AH", "V": "AH", "A#": "AH",
    "3": "ER", "3:": "ER", "IR": "ER", "VR": "ER", "a": "AE", "aa": "AE", "a2": "AE", "a/": "AE",
    "A:": "AA", "A@": "AA", "0": "AA", "0#": "AA", "02": "AA", "A~": "AA",
    "O": "AO", "O:": "AO", "O2": "AO", "O@": "AO", "o@": "AO", "O~": "AO", "o:": "OW", "oU": "OW", "oU#": "OW",
    "E": "EH", "E#": "EH", "E2": "EH", "e#": "EH", "e@": "EH", "e:": "EY", "eI": "EY",
    "I": "IH", "I#": "IH", "I2": "IH", "I2#": "IH", "i@": "IH", "i@3": "IH", "i": "IY", "i:": "IY",
    "U": "UH", "U@": "UH", "u": "UW", "u:": "UW", "OI": "OY",
    "aI": "AY", "aI@": "AY", "aI3": "AY", "aI2": "AY", "aU": "AW", "aU@": "AW", "@L": "L",
}
_C = {  # consonants; allophones (flapped t, glottal stop for t, syllabic/linking forms) fold into the base
    "p": "P", "b": "B", "t": "T", "t#": "T", "t2": "T", "t[": "T", "?": "T", "d": "D", "d#": "D", "d[": "D",
    "k": "K", "g": "G", "x": "K", "tS": "CH", "dZ": "JH", "f": "F", "v": "V", "T": "TH", "D": "DH",
    "s": "S", "z": "Z", "z#": "Z", "z/2": "Z", "S": "SH", "Z": "ZH", "h": "HH",
    "m": "M", "m-": "M", "n": "N", "n-": "N", "N": "NG", "N-": "NG",
    "l": "L", "l/": "L", "l/2": "L", "l-": "L", "r": "R", "r-": "R", "r/": "R",
    "w": "W", "w#": "W", "j": "Y", ";": "Y",
}
ESPEAK_TO_ARPABET: dict[str, str] = {**{p: SIL for p in _PAUSES}, **_V, **_C}
"""espeak English phoneme mnemonic (stress marks stripped) -> ARPAbet (39-phone CMU set) or SIL."""

_STOPS = frozenset("P B T D K G CH JH".split())
_VOWELS = frozenset(_V.values()) - {"L"}
_SONORANTS = frozenset("L R W Y M N NG".split())
_VOWEL_T, _LIQUID_T, _NASAL_T = 2, 3, 8  # espeak phoneme types (phoneme.h), as the alignment hook reports them
_EV_WORD, _EV_PHONEME = 1, 7


@dataclass(frozen=True)
class Interval:
    """A labelled time span [start, end) in seconds from the start of the utterance's audio."""

    start: float  # seconds
    end: float
    label: str


@dataclass
class Utterance:
    """Synthesised speech with its ground-truth timings."""

    audio: np.ndarray  # float32 mono, shape (n,), in [-1, 1]
    sample_rate: int  # the requested output rate
    words: list[Interval]  # one per whitespace token: lowercased, surrounding punctuation stripped
    phones: list[Interval]  # ARPAbet without stress, or SIL; tiles [0, duration] exactly
    text: str
    voice: str
    rate_wpm: int

    @property
    def duration(self) -> float:
        return len(self.audio) / self.sample_rate


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):  # espeak_EVENT (speak_lib.h); ctypes adds the padding before user_data
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


class _Voice(ctypes.Structure):  # espeak_VOICE
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_void_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_SYNTH_CB = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))
_PHO_CB = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int)
_SAMPLE_CB = ctypes.CFUNCTYPE(None, ctypes.c_short)


class _Hooks(ctypes.Structure):  # espeak_ng_OUTPUT_HOOKS
    _fields_ = [("pho", _PHO_CB), ("silence", _SAMPLE_CB), ("voiced", _SAMPLE_CB), ("unvoiced", _SAMPLE_CB)]


class _Engine:
    """The process's espeak-ng instance (the library has global state, so there is exactly one)."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        c = ctypes
        lib.espeak_Initialize.argtypes = [c.c_int, c.c_int, c.c_char_p, c.c_int]
        lib.espeak_Synth.argtypes = [c.c_char_p, c.c_size_t, c.c_uint, c.c_int, c.c_uint, c.c_uint,
                                     c.c_void_p, c.c_void_p]
        lib.espeak_ListVoices.restype = c.POINTER(c.POINTER(_Voice))
        lib.espeak_TextToPhonemes.restype = c.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [c.POINTER(c.c_void_p), c.c_int, c.c_int]
        data = espeakng_loader.get_data_path()
        # AUDIO_OUTPUT_SYNCHRONOUS; espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT
        self.rate = lib.espeak_Initialize(2, 0, data.encode(), 0x0001 | 0x8000)
        if self.rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({self.rate}) with data at {data}")
        count = _SAMPLE_CB(self._on_sample)
        self._callbacks = (_SYNTH_CB(self._on_audio), _Hooks(_PHO_CB(self._on_phoneme), count, count, count))
        lib.espeak_SetSynthCallback(self._callbacks[0])
        lib.espeak_ng_SetOutputHooks(c.byref(self._callbacks[1]))
        self.voices: dict[str, tuple[int, str]] = {}  # language code, name or file -> (priority, identifier)
        entries, i = lib.espeak_ListVoices(None), 0
        while entries[i]:
            v, i = entries[i].contents, i + 1
            keys, p = [(0, v.identifier.decode().lower()), (0, v.name.decode().lower())], v.languages
            while prio := c.c_ubyte.from_address(p).value:  # (priority byte, NUL-terminated code)*, then 0
                keys.append((prio, c.string_at(p + 1).decode().lower()))
                p += len(keys[-1][1]) + 2
            for prio, key in keys:
                if key not in self.voices or prio < self.voices[key][0]:
                    self.voices[key] = (prio, v.identifier.decode())
        self.languages = sorted(k for k, (prio, _) in self.voices.items() if prio > 0)
        self.variants = {p.name.lower(): p.name for p in (Path(data) / "voices" / "!v").iterdir()}
        self._chunks, self._events, self._hooks, self._n = [], [], [], 0

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).copy())
        i = 0
        while (ev := events[i]).type != 0:  # espeakEVENT_LIST_TERMINATED
            name = ev.id.string.decode("utf-8", "replace") if ev.type == _EV_PHONEME else ""
            self._events.append((ev.type, ev.sample, ev.text_position, name))
            i += 1
        return 0

    def _on_phoneme(self, name: bytes, ph_type: int) -> None:
        self._hooks.append((name.decode("utf-8", "replace"), ph_type, self._n))

    def _on_sample(self, _sample: int) -> None:
        self._n += 1

    def resolve(self, voice: str) -> str:
        """'en-gb+f3' -> 'gmw/en+f3' (espeak's SetVoiceByName does not know codes like 'en-gb')."""
        base, _, variant = voice.strip().lower().partition("+")
        if base not in self.voices or (variant and variant not in self.variants):
            raise ValueError(f"unknown espeak voice {voice!r}; voices: {', '.join(self.languages)}; "
                             f"variants (voice+variant): {', '.join(sorted(self.variants.values()))}")
        return self.voices[base][1] + ("+" + self.variants[variant] if variant else "")

    def run(self, ident: str, text: str, rate: int, pitch: int, tokens: list[str]) -> tuple:
        """Synthesise; returns int16 audio, events, alignment hooks (None if unusable), phonemes per token."""
        self._chunks, self._events, self._hooks, self._n = [], [], [], 0
        if hasattr(self.lib, "espeak_ng_SetRandSeed"):
            self.lib.espeak_ng_SetRandSeed(ctypes.c_long(0))  # breath/noise generators
        if self.lib.espeak_SetVoiceByName(ident.encode()) != 0:
            raise RuntimeError(f"espeak could not load voice {ident!r}")
        self.lib.espeak_SetParameter(1, rate, 0)   # espeakRATE
        self.lib.espeak_SetParameter(3, pitch, 0)  # espeakPITCH
        data = text.encode()
        if self.lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, 1, None, None) != 0:  # POS_CHARACTER, UTF8
            raise RuntimeError("espeak_Synth failed")
        audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
        counts = []
        for tok in tokens:  # phonemes per token, to split words espeak speaks as one ("of the")
            buf = ctypes.create_string_buffer(tok.encode())
            ptr, names = ctypes.c_void_p(ctypes.addressof(buf)), []
            while ptr.value:
                names += (self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), 1, ord("|") << 8) or b"").split(b"|")
            counts.append(sum(n.decode("utf-8", "replace").lstrip("',%=") not in _PAUSES for n in names))
        hooks = self._hooks if self._n == len(audio) else None  # Klatt voices skip the per-sample hooks
        return audio, self._events, hooks, counts


_LOCK = threading.Lock()
_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = _Engine()
    return _ENGINE


def _isolated(fn, *args):
    """fn(*args) in a forked child, so that every call starts from the same pristine espeak state."""
    if not hasattr(os, "fork"):
        return fn(*args)  # timings stay exact, but output may differ by a few samples between calls
    r, w = os.pipe()
    if (pid := os.fork()) == 0:  # child: must never return into the caller's code
        try:
            try:
                payload = pickle.dumps((True, fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # noqa: BLE001 - handed to the parent
                payload = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
            with os.fdopen(w, "wb") as f:
                f.write(payload)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        payload = f.read()
    os.waitpid(pid, 0)
    ok, result = pickle.loads(payload) if payload else (False, "espeak synthesis process died")
    if not ok:
        raise RuntimeError(result)
    return result


def available_voices() -> list[str]:
    """Language codes of the voices espeak reports (e.g. 'en-us', 'en-gb'); append '+variant' to vary them."""
    with _LOCK:
        return list(_engine().languages)


def available_variants() -> list[str]:
    """Voice variants (e.g. 'f3', 'm3'), usable as 'en-us+f3'."""
    with _LOCK:
        return sorted(_engine().variants.values())


def _phoneme_names(eng: _Engine, ident: str, words: list[str]) -> list[list[str]]:
    """espeak's phoneme mnemonics (stress kept) of each word, from its text-to-phonemes function."""
    if eng.lib.espeak_SetVoiceByName(ident.encode()) != 0:
        raise RuntimeError(f"espeak could not load voice {ident!r}")
    out = []
    for word in words:
        buf = ctypes.create_string_buffer(word.encode())
        ptr, names = ctypes.c_void_p(ctypes.addressof(buf)), []
        while ptr.value:
            names += (eng.lib.espeak_TextToPhonemes(ctypes.byref(ptr), 1, ord("|") << 8) or b"").split(b"|")
        out.append([n for b in names for n in b.decode("utf-8", "replace").split()])  # "i t": word break
    return out


def phonemize(words: list[str], voice: str = "en-us") -> list[list[str] | None]:
    """ARPAbet pronunciation (no stress, pauses dropped) of each word, as espeak-ng would speak it.

    Uses the same mapping as `synthesize` (ESPEAK_TO_ARPABET). A word containing an espeak phoneme
    with no ARPAbet equivalent (likely with non-English voices) gives None. Runs in a forked child,
    like synthesis, so it leaves this process's espeak state untouched.
    """
    if not words:
        return []
    with _LOCK:
        eng = _engine()
        names = _isolated(_phoneme_names, eng, eng.resolve(voice), list(words))
    out: list[list[str] | None] = []
    for word_names in names:
        try:
            phones = [_arpabet(n) for n in word_names]
        except KeyError:
            out.append(None)
            continue
        out.append([p for p in phones if p != SIL])
    return out


def _arpabet(name: str) -> str:
    key = name.lstrip("',%=")  # stress marks
    if key not in ESPEAK_TO_ARPABET:
        raise KeyError(f"espeak phoneme {name!r} has no ARPAbet mapping (add it to ESPEAK_TO_ARPABET)")
    return ESPEAK_TO_ARPABET[key]


def _split_point(x: np.ndarray, lo: int, hi: int, rate: int) -> int:
    """Sample in (lo, hi) where a two-segment fit of log band energies changes (nasal release, liquid-vowel)."""
    hop, win = rate // 500, rate * 15 // 1000
    centres = np.arange(lo + hop // 2, hi, hop)
    if len(centres) < 6:  # too short to split (or empty): keep espeak's event
        return hi
    idx = np.clip(centres[:, None] - win // 2 + np.arange(win)[None, :], 0, len(x) - 1)
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(win), axis=1)) ** 2
    band = np.searchsorted(np.fft.rfftfreq(win, 1 / rate), [300, 700, 1200, 2000, 3000, 5000])
    feats = np.log10(np.add.reduceat(spec, np.r_[0, band], axis=1) + 1.0)
    n, k = len(feats), np.arange(2, len(feats) - 1)  # at least 2 frames (4 ms) on each side
    c, c2 = np.cumsum(feats, 0), np.sum(feats ** 2)
    s1, s2 = c[k - 1], c[-1] - c[k - 1]
    sse = c2 - np.sum(s1 ** 2, 1) / k - np.sum(s2 ** 2, 1) / (n - k)
    j = k[int(np.argmin(sse))]
    return int((centres[j - 1] + centres[j]) // 2)


def _match_hooks(names: list[str], hooks: list[tuple[str, int, int]]) -> list:
    """The alignment hook of each phoneme event, matched run by run of equal names (or None)."""
    h = [x for k, x in enumerate(hooks) if k == 0 or x != hooks[k - 1]]  # repeats when espeak's queue was full
    out: list = [None] * len(names)
    i = j = 0
    while i < len(names):
        ie = next((q for q in range(i, len(names)) if names[q] != names[i]), len(names))
        j = next((q for q in range(j, len(h)) if h[q][0] == names[i]), len(h))
        je = next((q for q in range(j, len(h)) if h[q][0] != names[i]), len(h))
        if je - j == ie - i:
            out[i:ie] = h[j:je]
        i, j = ie, je
    return out


def _phone_starts(audio: np.ndarray, events: list[tuple], hooks: list | None, rate: int) -> list[list]:
    """[start_sample, label, word_group] per phone (and inserted pause), in order, at espeak's rate."""
    names = [e[3] for e in events if e[0] == _EV_PHONEME]
    matched = _match_hooks(names, hooks) if hooks is not None else [None] * len(names)
    out: list[list] = []
    group, prev_ev, prev_type, k = -1, 0, None, 0
    nonzero, x = np.flatnonzero(audio), audio.astype(np.float64)
    for etype, sample, _pos, name in events:
        group += etype == _EV_WORD
        if etype != _EV_PHONEME:
            continue
        label, hk, k = _arpabet(name), matched[k], k + 1
        if hk is not None:
            begin, ptype = min(hk[2], sample), hk[1]
        else:  # no hook: the pre-pause is the run of zeros before the event
            before = nonzero[(nonzero < sample) & (nonzero >= prev_ev)]
            begin = int(before[-1]) + 1 if len(before) else prev_ev
            ptype = _VOWEL_T if label in _VOWELS else _NASAL_T if label in _SONORANTS else 0
        after_sound = bool(out) and out[-1][1] != SIL
        if label == SIL:
            start = begin
        elif ptype == _VOWEL_T and prev_type in (_LIQUID_T, _NASAL_T) and after_sound:
            start = _split_point(x, prev_ev, sample, rate)
        elif label in _STOPS and after_sound:
            start = begin  # the closure belongs to the stop
        else:
            if begin < sample:
                out.append([begin, SIL, None])  # a pre-pause that is a real (short) silence
            start = sample
        out.append([start, label, None if label == SIL else group])
        prev_ev, prev_type = sample, ptype
    for i in range(1, len(out)):  # never let a refined start run backwards
        out[i][0] = max(out[i][0], out[i - 1][0])
    return out


def synthesize(text: str, voice: str = "en-us", rate_wpm: int = 160, pitch: int = 50,
               sample_rate: int = 16000, lead_silence: float = 0.3, tail_silence: float = 0.3) -> Utterance:
    """Speak `text` with espeak-ng (see the module docstring for where the timings come from).

    Args:
        voice: a language code from `available_voices()`, optionally with a variant: "en-us+f3".
        rate_wpm: speaking rate (80-450 words per minute); pitch: espeak base pitch (0-100).
        lead_silence, tail_silence: seconds of digital silence added before and after the speech.

    Raises:
        ValueError: unknown voice, empty text, or a parameter out of range.
        KeyError: espeak produced a phoneme with no ARPAbet mapping (e.g. with a non-English voice).
    """
    tokens = text.split()
    if not tokens:
        raise ValueError("text is empty")
    if not (80 <= rate_wpm <= 450 and 0 <= pitch <= 100 and sample_rate > 0 and min(lead_silence, tail_silence) >= 0):
        raise ValueError("need 80 <= rate_wpm <= 450, 0 <= pitch <= 100, sample_rate > 0 and silences >= 0")
    with _LOCK:
        eng = _engine()
        audio, events, hooks, counts = _isolated(eng.run, eng.resolve(voice), text, rate_wpm, pitch, tokens)
    rate = eng.rate
    starts = _phone_starts(audio, events, hooks, rate)
    g, lead_n = gcd(sample_rate, rate), round(lead_silence * sample_rate)
    speech = resample_poly(audio / 32768.0, sample_rate // g, rate // g) if len(audio) else np.zeros(0)
    out = np.zeros(lead_n + len(speech) + round(tail_silence * sample_rate), np.float32)
    out[lead_n:lead_n + len(speech)] = np.clip(speech, -1.0, 1.0)
    duration, lead = len(out) / sample_rate, lead_n / sample_rate
    # All boundaries come from this one list, so each start is exactly the previous end.
    cuts = [0.0] + [lead + s / rate for s, _, _ in starts] + [lead + len(audio) / rate, duration]
    marks = [(0, SIL, None), *starts, (0, SIL, None)]  # lead silence, phones, tail silence
    spans = [(cuts[i], cuts[i + 1], lab, grp) for i, (_, lab, grp) in enumerate(marks)]
    phones: list[Interval] = []
    for a, b, lab, _ in spans:
        if b > a and phones and lab == SIL == phones[-1].label:
            phones[-1] = Interval(phones[-1].start, b, SIL)
        elif b > a:
            phones.append(Interval(a, b, lab))
    phones = phones or [Interval(0.0, duration, SIL)]
    phones[-1] = Interval(phones[-1].start, duration, phones[-1].label)
    return Utterance(out, sample_rate, _words(text, tokens, events, spans, counts), phones, text, voice, rate_wpm)


def _words(text: str, tokens: list[str], events: list[tuple], spans: list, counts: list[int]) -> list[Interval]:
    """One interval per whitespace token, from the word events and the phones that follow each."""
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    firsts = [next((t for t, end in enumerate(ends) if e[2] - 1 < end), len(ends) - 1)
              for e in events if e[0] == _EV_WORD]  # token where each word event starts (1-based position)
    runs: list[tuple[int, list[tuple[float, float]]]] = []  # (first token, phone spans) per run of speech
    for g, t in enumerate(firsts):
        if not runs or t > runs[-1][0]:  # else espeak split one token into words ("fifty-one"): keep together
            runs.append((t, []))
        runs[-1][1].extend((a, b) for a, b, lab, grp in spans if lab != SIL and grp is not None and max(grp, 0) == g)
    runs = runs or [(0, [(a, b) for a, b, lab, _ in spans if lab != SIL])]
    bounds: list[tuple[float, float]] = []
    for r, (first, ph) in enumerate(runs):
        # Tokens without a word event of their own were spoken with the one before ("of the", "at once"):
        # cut the run's phones in proportion to each token's own phoneme count (exact when they agree).
        toks = range(0 if r == 0 else first, runs[r + 1][0] if r + 1 < len(runs) else len(tokens))
        want = np.array([counts[t] for t in toks], float)
        want = want if want.sum() > 0 else np.ones(len(want))
        edges = np.round(np.r_[0, np.cumsum(want)] * len(ph) / want.sum()).astype(int)
        for a, b in zip(edges[:-1], edges[1:]):
            at = ph[a][0] if a < len(ph) else ph[-1][1] if ph else (bounds[-1][1] if bounds else spans[0][1])
            bounds.append((ph[a][0], ph[b - 1][1]) if b > a else (at, at))  # (at, at): nothing spoken, e.g. "-"
    strip = string.punctuation + "\u2013\u2014\u2018\u2019\u201c\u201d\u2026\u00ab\u00bb"
    return [Interval(a, b, tok.strip(strip).lower()) for tok, (a, b) in zip(tokens, bounds)]
