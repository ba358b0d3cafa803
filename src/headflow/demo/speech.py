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
  also holds the consonant's murmur and release (for [m n N j] all of it), so the event is 25-50 ms late.
  There the boundary is put where a two-segment fit of 15 ms log band energies splits the span between
  the consonant's event and the vowel's event (the nasal release / liquid-vowel change).
* Word events give the word structure (which phones belong to which word); a word spans its phones.

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

__all__ = ["ESPEAK_TO_ARPABET", "Interval", "Utterance", "available_variants", "available_voices", "synthesize"]

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
    start: float  # seconds
    end: float
    label: str


@dataclass
class Utterance:
    audio: np.ndarray  # float32 mono, shape (n,), in [-1, 1]
    sample_rate: int
    words: list[Interval]
    phones: list[Interval]  # tiles [0, duration]
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
    """The process's espeak-ng instance (the library has global state, so there is one)."""

    def __init__(self) -> None:
        import espeakng_loader

        lib = self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        data = espeakng_loader.get_data_path()
        # AUDIO_OUTPUT_SYNCHRONOUS=2; espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT
        self.rate = lib.espeak_Initialize(2, 0, data.encode(), 0x0001 | 0x8000)
        if self.rate <= 0:
            raise RuntimeError(f"espeak_Initialize failed ({self.rate}) with data at {data}")
        self._callbacks = (_SYNTH_CB(self._on_audio), _Hooks(_PHO_CB(self._on_phoneme), *[_SAMPLE_CB(self._on_sample)] * 3))
        lib.espeak_SetSynthCallback(self._callbacks[0])
        lib.espeak_ng_SetOutputHooks(ctypes.byref(self._callbacks[1]))
        self.voices: dict[str, tuple[int, str]] = {}  # language code, name or file -> (priority, identifier)
        entries = lib.espeak_ListVoices(None)
        for i in range(10_000):
            if not entries[i]:
                break
            v = entries[i].contents
            ident = v.identifier.decode()
            keys, p = [(0, ident.lower()), (0, v.name.decode().lower())], v.languages
            while (prio := ctypes.c_ubyte.from_address(p).value) != 0:  # (priority byte, NUL-terminated code)*
                code = ctypes.string_at(p + 1)
                keys.append((prio, code.decode().lower()))
                p += len(code) + 2
            for prio, key in keys:
                if key not in self.voices or prio < self.voices[key][0]:
                    self.voices[key] = (prio, ident)
        self.languages = sorted({k for k, (prio, _) in self.voices.items() if prio > 0})
        self.variants = {p.name.lower(): p.name for p in (Path(data) / "voices" / "!v").iterdir()}
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple] = []
        self._hooks: list[tuple[str, int, int]] = []
        self._n = 0

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
        """'en-us+f3' -> 'gmw/en-US+f3' (espeak's own SetVoiceByName does not know codes like 'en-gb')."""
        base, _, variant = voice.partition("+")
        if base.strip().lower() not in self.voices or (variant and variant.lower() not in self.variants):
            raise ValueError(f"unknown espeak voice {voice!r}; voices: {', '.join(self.languages)}; "
                             f"variants (voice+variant): {', '.join(sorted(self.variants.values()))}")
        ident = self.voices[base.strip().lower()][1]
        return ident + ("+" + self.variants[variant.lower()] if variant else "")

    def run(self, ident: str, text: str, rate: int, pitch: int, tokens: list[str]) -> tuple:
        """Synthesise (in a disposable child process); returns raw audio, events, hooks, phone counts."""
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
                out = self.lib.espeak_TextToPhonemes(ctypes.byref(ptr), 1, ord("|") << 8)
                names += (out or b"").decode("utf-8", "replace").split("|")
            counts.append(sum(_arpabet(n) != SIL for n in names))
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
    """fn(*args) in a forked child, so every call starts from the same pristine espeak state."""
    if not hasattr(os, "fork"):
        return fn(*args)  # no fork: still correct timings, but not bit-reproducible across calls
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's code
        try:
            try:
                payload = pickle.dumps((True, fn(*args)), protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException as exc:  # noqa: BLE001 - reported to the parent
                payload = pickle.dumps((False, f"{type(exc).__name__}: {exc}"))
            with os.fdopen(w, "wb") as f:
                f.write(payload)
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        payload = f.read()
    os.waitpid(pid, 0)
    if not payload:
        raise RuntimeError("espeak synthesis process died")
    ok, result = pickle.loads(payload)
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


def _arpabet(name: str) -> str:
    key = name.lstrip("',%=")  # stress marks
    if key not in ESPEAK_TO_ARPABET:
        raise KeyError(f"espeak phoneme {name!r} has no ARPAbet mapping (add it to ESPEAK_TO_ARPABET)")
    return ESPEAK_TO_ARPABET[key]


def _split_point(x: np.ndarray, lo: int, hi: int, rate: int) -> int:
    """Sample in (lo, hi) where a two-segment fit of log band energies changes (nasal release, liquid-vowel)."""
    hop, win = rate // 500, rate * 15 // 1000
    centres = np.arange(lo + hop // 2, hi, hop)
    if len(centres) < 6:
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


def _phone_starts(audio: np.ndarray, events: list[tuple], hooks: list | None, rate: int) -> list[list]:
    """[start_sample, label, word_group] per phone (and inserted pause), in order, at espeak's rate."""
    names = [e[3] for e in events if e[0] == _EV_PHONEME]
    matched: list = [None] * len(names)
    if hooks is not None:  # pair hooks with events run by run; the hook repeats when espeak's queue was full
        h = [x for k, x in enumerate(hooks) if k == 0 or x != hooks[k - 1]]
        i = j = 0
        while i < len(names):
            ie = i
            while ie < len(names) and names[ie] == names[i]:
                ie += 1
            while j < len(h) and h[j][0] != names[i]:
                j += 1
            je = j
            while je < len(h) and h[je][0] == names[i]:
                je += 1
            if je - j == ie - i:
                matched[i:ie] = h[j:je]
            i, j = ie, je
    out: list[list] = []
    group, prev_ev, prev_type, k = -1, 0, None, 0
    nonzero = np.flatnonzero(audio)
    for etype, sample, _pos, name in events:
        if etype == _EV_WORD:
            group += 1
            continue
        if etype != _EV_PHONEME:
            continue
        label, hk = _arpabet(name), matched[k]
        k += 1
        if hk is not None:
            begin, ptype = min(hk[2], sample), hk[1]
        else:  # no hook: the pre-pause is the run of zeros before the event
            before = nonzero[(nonzero < sample) & (nonzero >= prev_ev)]
            begin = int(before[-1]) + 1 if len(before) else prev_ev
            ptype = _VOWEL_T if label in _VOWELS else _NASAL_T if label in _SONORANTS else 0
        prev = out[-1] if out else None
        if label == SIL:
            start = begin
        elif ptype == _VOWEL_T and prev_type in (_LIQUID_T, _NASAL_T) and prev and prev[1] != SIL:
            start = _split_point(audio.astype(np.float64), prev_ev, sample, rate) if sample > prev_ev else sample
        elif begin < sample and label in _STOPS and prev is not None and prev[1] != SIL:
            start = begin  # closure
        else:
            if begin < sample:
                out.append([begin, SIL, None])
            start = sample
        out.append([start, label, None if label == SIL else group])
        prev_ev, prev_type = sample, ptype
    for i in range(1, len(out)):  # never let a refined start run backwards
        out[i][0] = max(out[i][0], out[i - 1][0])
    return out


def _word_tokens(text: str, events: list[tuple], n_groups: int) -> list[list[int]]:
    """Token indices spoken by each word event, from the events' 1-based character positions."""
    spans = [m.span() for m in re.finditer(r"\S+", text)]
    firsts = []
    for e in events:
        if e[0] == _EV_WORD:
            pos = e[2] - 1
            firsts.append(next((t for t, (a, b) in enumerate(spans) if pos < b), len(spans) - 1))
    tokens: list[list[int]] = [[] for _ in range(n_groups)]
    for g in range(n_groups):
        # A token with no event of its own was spoken together with the one before ("of the").
        lo = 0 if g == 0 else firsts[g]
        hi = firsts[g + 1] if g + 1 < n_groups else len(spans)
        tokens[g] = [t for t in range(lo, hi) if all(firsts[q] != t for q in range(g))]
    return tokens


def synthesize(text: str, voice: str = "en-us", rate_wpm: int = 160, pitch: int = 50,
               sample_rate: int = 16000, lead_silence: float = 0.3, tail_silence: float = 0.3) -> Utterance:
    """Speak `text` with espeak-ng; see the module docstring for where the timings come from.

    Raises:
        ValueError: unknown voice, empty text, or a parameter out of range.
        KeyError: espeak produced a phoneme with no ARPAbet mapping (e.g. a non-English voice).
    """
    tokens = text.split()
    if not tokens:
        raise ValueError("text is empty")
    if not (80 <= rate_wpm <= 450 and 0 <= pitch <= 100 and sample_rate > 0
            and lead_silence >= 0 and tail_silence >= 0):
        raise ValueError("need 80 <= rate_wpm <= 450, 0 <= pitch <= 100, sample_rate > 0, silences >= 0")
    with _LOCK:
        eng = _engine()
        ident = eng.resolve(voice)
        audio, events, hooks, counts = _isolated(eng.run, ident, text, rate_wpm, pitch, tokens)
        rate = eng.rate
    phones = _phone_starts(audio, events, hooks, rate)
    lead_n, tail_n = round(lead_silence * sample_rate), round(tail_silence * sample_rate)
    g = gcd(sample_rate, rate)
    speech = resample_poly(audio / 32768.0, sample_rate // g, rate // g) if len(audio) else np.zeros(0)
    out = np.zeros(lead_n + len(speech) + tail_n, np.float32)
    out[lead_n:lead_n + len(speech)] = np.clip(speech, -1.0, 1.0)
    duration, lead = len(out) / sample_rate, lead_n / sample_rate
    # Boundaries in seconds; one list, so each start is exactly the previous end.
    cuts = [0.0] + [lead + s / rate for s, _, _ in phones] + [lead + len(audio) / rate, duration]
    labels = [SIL] + [lab for _, lab, _ in phones] + [SIL]
    spans = [(cuts[i], cuts[i + 1], labels[i], phones[i - 1][2] if 0 < i <= len(phones) else None)
             for i in range(len(labels))]
    phone_list: list[Interval] = []
    for a, b, lab, _ in spans:
        if b <= a:
            continue
        if phone_list and lab == SIL and phone_list[-1].label == SIL:
            phone_list[-1] = Interval(phone_list[-1].start, b, SIL)
        else:
            phone_list.append(Interval(a, b, lab))
    if phone_list:  # the last phone ends exactly at the duration
        last = phone_list[-1]
        phone_list[-1] = Interval(last.start, duration, last.label)
    words = _words(text, tokens, events, spans, counts)
    return Utterance(out, sample_rate, words, phone_list, text, voice, rate_wpm)


def _words(text: str, tokens: list[str], events: list[tuple], spans: list, counts: list[int]) -> list[Interval]:
    n_groups = sum(e[0] == _EV_WORD for e in events)
    per_group: list[list[tuple[float, float]]] = [[] for _ in range(max(n_groups, 1))]
    for a, b, lab, grp in spans:
        if lab != SIL and grp is not None:
            per_group[max(grp, 0)].append((a, b))
    token_groups = _word_tokens(text, events, n_groups) if n_groups else [list(range(len(tokens)))]
    bounds: list[tuple[float, float] | None] = [None] * len(tokens)
    for grp, toks in enumerate(token_groups):
        ph = per_group[grp]
        if not toks:
            continue
        want = np.array([max(counts[t], 1) for t in toks], float)
        # Cut the group's phones in proportion to each token's own phoneme count (exact when they agree).
        edges = np.round(np.r_[0, np.cumsum(want)] * len(ph) / want.sum()).astype(int)
        for t, a, b in zip(toks, edges[:-1], edges[1:]):
            if b > a:
                bounds[t] = (ph[a][0], ph[b - 1][1])
            elif ph:
                at = ph[min(a, len(ph) - 1)][0] if a < len(ph) else ph[-1][1]
                bounds[t] = (at, at)
    words, last = [], spans[0][1] if spans else 0.0
    for tok, bd in zip(tokens, bounds):
        start, end = bd if bd is not None else (last, last)  # a token espeak did not speak (e.g. "&")
        words.append(Interval(start, end, tok.strip(string.punctuation + "\u201c\u201d\u2018\u2019\u2026").lower()))
        last = end
    return words
