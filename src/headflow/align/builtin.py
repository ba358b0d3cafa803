"""The builtin forced aligner: monophone HMMs trained on the corpus being aligned, no pretrained model.

Method (Viterbi training, as in a Kaldi/HTK flat start, sized for minutes of speech):
1. Features: 13 MFCCs + deltas + delta-deltas every `shift_ms`, mean/variance normalised per utterance.
2. Graph per utterance: optional silence, the phones of each word, optional silence after every
   word. A word with several dictionary pronunciations gets each (up to `max_pronunciations`) as a
   parallel chain and Viterbi picks one, as in MFA's lexicon graph. Words without a pronunciation become
   one GARBAGE segment (a fixed model of all speech), labelled SIL in the phone outputs, like MFA's `spn`.
3. Initial segmentation: silence outside the energy-based speech region, phones spread evenly
   inside it (`init="flat"`); each transcript synthesised with espeak-ng and warped onto the
   audio by DTW (`init="espeak_dtw"`, see dtw.py); or (default) Viterbi with a model estimated from
   espeak-ng speaking every transcript in three voices plus the real pauses (`init="espeak_hmm"`,
   see synth.py), which starts closest to the truth on real speech.
4. `iterations` rounds of: re-estimate Gaussians and self-loop probabilities from the current
   alignment, then re-align every utterance with Viterbi; mixtures double at `split_at`. At round
   `lda_at` the features become LDA features (Kaldi's LDA stage, as in MFA's training): the 13 static
   cepstra of +-`lda_context` frames, spliced, projected onto the `lda_dim` linear discriminants of the
   alignment's HMM states (`lda_transform`), and the Gaussians restart from one per state on them. The
   context lets a state see the spectral change around a frame, which deltas summarise in 2 numbers per
   cepstrum; on real speech it moved word boundaries within 40 ms from 79.0% to 81.4% (docs/results/align.md).
5. The last alignment gives the phone intervals; a word spans its phones. Each word onset after a pause moves
   to the first loud frame within +-`onset_snap_ms` (`snap_onsets`, a boundary correction after Viterbi).

Voice-activity-aware silence (issue 16; MFA's optional silence between words plus what its silence
model learns from many speakers, which ours cannot from minutes of one corpus): every speech state
(phones, spoken noise) loses `pause_penalty` log-likelihood per frame on frames in a pause, and
`long_pause_weight` times that in pauses of at least `long_pause_ms` (features.pause_frames: runs of
quiet frames, clicks bridged). Without it, a word stretched over a pause or parked in one cost less
than the silence model, whose Gaussians come from a handful of the corpus's pauses. The other way round,
SIL loses `speech_penalty` on frames above `loud_level` of the recording's floor-to-top energy range
(features.loud_frames): without it the silence model swallowed quiet word edges (held nasals, final
consonants, soft onsets), the commonest word-boundary miss against MFA on real speech.

Why our own aligner: the Montreal Forced Aligner does not run from PyPI (its Kaldi bindings come only
from conda-forge; `align.backend: mfa` uses it from PATH), and the pip-installable alternatives need
acoustic-model weights downloaded at run time (wav2vec2 CTC aligners) or torchaudio, which does not
import with this torch. This one needs only the corpus itself and espeak-ng, so `make demo` aligns offline.
"""

from __future__ import annotations

import numpy as np

from headflow.align.features import loud_frames, mfcc_features, pause_frames, quiet_frames, speech_region
from headflow.align.hmm import STATES, Accumulator, GaussianModel, Segment, build_graph, split_mixtures, uniform_path, viterbi
from headflow.align.lexicon import SPN, Pronunciation
from headflow.align.params import BuiltinAlignerParams
from headflow.align.phones import PHONE_INDEX, PHONES, SIL
from headflow.align.types import Alignment, AudioFrames, UtteranceInput

GARBAGE = len(PHONES)  # unit index after the phones
N_UNITS = GARBAGE + 1


def segments_for(prons: list[Pronunciation | None],
                 variants: list[list[Pronunciation]] | None = None) -> list[Segment]:
    """The utterance graph's segments: optional SIL, then per word its phones (GARBAGE when it has no
    pronunciation) and an optional SIL. `variants` (per word, its pronunciations, the first being
    `prons[w]`'s) adds each further distinct pronunciation as a parallel chain (`Segment.alt` 1, 2, ...),
    appended after all the rest so the first pronunciations' nodes keep their numbering (dtw.py's
    initial paths and uniform_path use only those)."""
    segs = [Segment(PHONE_INDEX[SIL], -1, True)]
    for w, pron in enumerate(prons):
        if pron is None or pron == (SPN,):
            segs.append(Segment(GARBAGE, w, False))
        else:
            segs.extend(Segment(PHONE_INDEX[p], w, False) for p in pron)
        segs.append(Segment(PHONE_INDEX[SIL], -1, True))
    for w, options in enumerate(variants or []):
        if prons[w] is None or prons[w] == (SPN,):
            continue
        seen = {tuple(prons[w])}
        for pron in options:
            if not pron or tuple(pron) in seen or SPN in pron:
                continue
            seen.add(tuple(pron))
            segs.extend(Segment(PHONE_INDEX[p], w, False, len(seen) - 1) for p in pron)
    return segs


def _global_model(frames: np.ndarray) -> GaussianModel:
    mu, var = frames.mean(0), frames.var(0) + 1e-3
    s = N_UNITS * STATES
    return GaussianModel(np.ones((s, 1)), np.tile(mu, (s, 1, 1)), np.tile(var, (s, 1, 1)), np.full(s, 0.7))


N_MFCC = 13
"""Static cepstra at the front of features.mfcc_features' rows (c0..c12), the input of `splice` for the LDA."""
LDA_MIN_FRAMES_PER_DIM = 20
"""The LDA runs only on corpora of at least this many frames per spliced dimension (91 at +-3 frames: 1820
frames, 18 s of audio): below that the within-class covariance it inverts is barely estimated (rank-deficient
under ~1 frame per dimension) and the aligner keeps MFCC + deltas."""


def splice(x: np.ndarray, context: int) -> np.ndarray:
    """(T, D) -> (T, (2 * context + 1) * D): each frame with its `context` neighbours on each side (edges
    repeated), in time order, as Kaldi's splice-feats."""
    padded = np.pad(x, ((context, context), (0, 0)), mode="edge")
    return np.concatenate([padded[k:k + len(x)] for k in range(2 * context + 1)], axis=1)


def lda_transform(xs: list[np.ndarray], labels: list[np.ndarray], dim: int) -> np.ndarray:
    """(D, dim) linear discriminant analysis of frames `xs` (each (T, D)) labelled with classes `labels` (each
    (T,) int, here the HMM states of a Viterbi alignment): the directions that maximise between-class over
    within-class scatter, scaled so the projected within-class covariance is the identity (the generalised
    eigenproblem S_b v = lambda S_w v; Kaldi's acc-lda / est-lda, the LDA of its LDA+MLLT training stage).
    Raises ValueError when dim exceeds D."""
    x = np.concatenate(xs).astype(np.float64)
    y = np.concatenate(labels)
    d = x.shape[1]
    if not 0 < dim <= d:
        raise ValueError(f"lda_transform: dim {dim} must be in 1..{d} (the spliced feature size)")
    classes, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    sums = np.zeros((len(classes), d))
    np.add.at(sums, inv, x)
    means = sums / counts[:, None]
    centred = x - means[inv]
    s_w = centred.T @ centred / len(x)
    mu = x.mean(0)
    s_b = ((means - mu).T * counts) @ (means - mu) / len(x)
    s_w += 1e-6 * np.trace(s_w) / d * np.eye(d)
    from scipy.linalg import eigh

    _, vecs = eigh(s_b, s_w)
    return vecs[:, ::-1][:, :dim]


def snap_onsets(units: np.ndarray, change: np.ndarray, loud: np.ndarray, max_frames: int,
                n_frames: int | None = None) -> np.ndarray:
    """Move each word onset after a pause to the first loud frame near it: a post-Viterbi boundary correction.

    Args:
        units: (K,) int, the HMM unit (phones.PHONE_INDEX, or GARBAGE) of each of the alignment's K segments.
        change: (K,) int, ascending, the first frame of each segment (change[0] = 0).
        loud: (T,) bool, features.loud_frames at `loud_level` (frames clearly above the recording's floor).
        max_frames: how far (frames, each way) an onset may move; 0 changes nothing.
        n_frames: the alignment's frames (the path's length; default len(loud)); a `loud` of another length is
            read only where both exist, so no onset moves past the alignment's end.

    Returns:
        (K,) int: `change` with every SIL -> speech boundary moved to the first loud frame within +-max_frames
        of it, where there is one; each segment keeps at least one frame. Other boundaries are untouched.

    Why: after a pause the corpus-trained monophones place a soft onset (an unvoiced or breathy start, a
    quiet first consonant) a frame or more off, and the energy says where the speech begins. On real speech
    (`../shared/data/mfa`, `bench/align.py --seeds 5`, docs/results/align.md) +-30 ms moved word boundaries
    within 40 ms of MFA from 81.4% to 83.3%, every seed gaining on both recordings (the held-out
    acoustic_corpus 86.6% -> 88.6%; chosen on cold_corpus among 20 / 30 / 40 / 50 ms: 78.5 / 79.5 / 78.9 /
    76.8%). The same rule for word ends before a pause (the last loud frame) lost 0.2-5 points and is not
    applied.
    """
    out = np.asarray(change).copy()
    if max_frames <= 0 or len(out) < 2:
        return out
    sil = PHONE_INDEX[SIL]
    n = min(len(loud), n_frames if n_frames is not None else len(loud))
    for k in range(1, len(out)):
        if units[k - 1] != sil or units[k] == sil:
            continue
        lo = max(out[k] - max_frames, out[k - 1] + 1)
        hi = min(out[k] + max_frames, (out[k + 1] if k + 1 < len(out) else n) - 1, n - 1)
        hits = np.flatnonzero(loud[lo:hi + 1]) if hi >= lo else []
        if len(hits):
            out[k] = lo + hits[0]
    return out


def onset_snap_frames(cfg: BuiltinAlignerParams) -> int:
    """`snap_onsets`' window in whole frames: floor(onset_snap_ms / shift_ms), so an onset never moves by more
    than `onset_snap_ms` (as features.pause_frames converts `gap_ms`); a window under one frame shift is off."""
    return int(cfg.onset_snap_ms // cfg.shift_ms)


def _intervals(utt: UtteranceInput, graph, path: np.ndarray, shift: float, duration: float,
               loud: np.ndarray | None = None, snap_frames: int = 0) -> Alignment:
    seg = graph.segment[path]
    change = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    starts = change
    if loud is not None and snap_frames > 0:
        starts = snap_onsets(np.array([graph.segments[seg[a]].unit for a in change]), change, loud, snap_frames,
                             len(seg))
    bounds = np.r_[starts, len(seg)]
    times = np.clip((bounds - 0.5) * shift, 0.0, duration)
    times[0], times[-1] = 0.0, duration
    phones = []
    for i, a in enumerate(change):
        g = graph.segments[seg[a]]
        label = SIL if g.unit == GARBAGE else PHONES[g.unit]
        if times[i + 1] > times[i]:
            phones.append((float(times[i]), float(times[i + 1]), label, g.word))
    return Alignment(utt.clip_id, duration, phones, word_spans(phones, utt.words))


def word_spans(phones: list[tuple[float, float, str, int]], words: list[str]) -> list[tuple[float, float, str]]:
    """(start s, end s, word) of each word that has phones: from its first phone's start to its last phone's end
    (`phones`: start, end, phone, word index; -1 = no word). A word without phones is left out."""
    out = []
    for w, word in enumerate(words):
        mine = [(a, b) for a, b, _, k in phones if k == w]
        if mine:
            out.append((mine[0][0], mine[-1][1], word))
    return out


def quiet_spans(wav: np.ndarray, n_frames: int, shift_ms: float, min_ms: float = 200.0) -> list[tuple[int, int]]:
    """[first, last) frames of each run of quiet frames (features.quiet_frames) lasting at least `min_ms`
    (real pauses; shorter quiet stretches are often weak speech, in recordings with little dynamic
    range), or of at least STATES frames when no run is that long."""
    q = np.r_[False, quiet_frames(wav, n_frames, shift_ms), False]
    edges = np.flatnonzero(q[1:] != q[:-1]).reshape(-1, 2)
    long = [(int(a), int(b)) for a, b in edges if (b - a) * shift_ms >= min_ms]
    return long or [(int(a), int(b)) for a, b in edges if b - a >= STATES]


def audio_frames(wav: np.ndarray, cfg: BuiltinAlignerParams | None = None) -> AudioFrames:
    """All `train_and_align` takes from one utterance's audio (float32 mono, 16 kHz), at `cfg.shift_ms`:
    the features, the pause and loudness weights, the quiet spans, the speech region and the duration.
    Computed per clip where the audio is read (`run.py`'s workers), so the aligner holds ~0.06 MB of
    features a clip of ~4 s instead of its ~0.25 MB of samples."""
    cfg = cfg or BuiltinAlignerParams()
    x = mfcc_features(wav, cfg.shift_ms, dither_seed=cfg.dither_seed)
    pause = (pause_frames(wav, len(x), cfg.shift_ms, cfg.pause_min_ms, cfg.pause_gap_ms, cfg.long_pause_ms,
                          cfg.long_pause_weight) if cfg.pause_penalty > 0 else None)
    loud = (loud_frames(wav, len(x), cfg.shift_ms, cfg.loud_level)
            if cfg.speech_penalty > 0 or onset_snap_frames(cfg) > 0 else None)
    return AudioFrames(x, pause, loud, quiet_spans(wav, len(x), cfg.shift_ms),
                       speech_region(wav, cfg.shift_ms, len(x)), len(wav))


def emissions(model: GaussianModel, x: np.ndarray, graph, pause: np.ndarray | None, penalty: float,
              loud: np.ndarray | None = None, speech_penalty: float = 0.0) -> np.ndarray:
    """(T, S) state log-likelihoods of the graph's states, minus `penalty` x `pause` (T,) weights
    (features.pause_frames) for every speech state (not SIL), and minus `speech_penalty` for the SIL
    states on `loud` (T,) frames (features.loud_frames): the voice-activity-aware silence model."""
    ll = model.log_likelihood(x, np.unique(graph.state))
    sil = np.arange(PHONE_INDEX[SIL] * STATES, (PHONE_INDEX[SIL] + 1) * STATES)
    if pause is not None and penalty > 0 and pause.any():
        speech = np.setdiff1d(np.unique(graph.state), sil)
        rows = np.flatnonzero(pause)
        ll[np.ix_(rows, speech)] -= penalty * pause[rows, None]
    if loud is not None and speech_penalty > 0 and loud.any():
        ll[np.ix_(np.flatnonzero(loud), sil)] -= speech_penalty
    return ll


def train_and_align(utts: list[UtteranceInput], cfg: BuiltinAlignerParams | None = None,
                    init_paths: list[np.ndarray | None] | None = None,
                    synthetic: list[tuple[np.ndarray, np.ndarray] | None] | None = None) -> list[Alignment]:
    """Train monophone HMMs on `utts` and return each utterance's alignment (failures marked).

    `cfg` is the `align.builtin` params block itself (default: its defaults). Initial segmentation:
    with `synthetic` (per utterance, synth.synthetic_frames or None) holding any data, Viterbi with the
    model estimated from it (synth.py); else `init_paths` (dtw.py) where given, else a flat start.
    An utterance's `frames` (`audio_frames`), where given, stands for its audio (`wav` is not read)."""
    cfg = cfg or BuiltinAlignerParams()
    shift = cfg.shift_ms / 1000
    audio = [u.frames or audio_frames(u.wav, cfg) for u in utts]
    feats = [a.features for a in audio]
    graphs = [build_graph(segments_for(u.prons, [v[:cfg.max_pronunciations] for v in u.variants]
                                       if u.variants and cfg.max_pronunciations > 1 else None),
                          np.log(cfg.p_silence)) for u in utts]
    ok = [len(x) >= g.min_frames for x, g in zip(feats, graphs)]
    pauses = [a.pause for a in audio]
    louds = [a.loud for a in audio]
    if not any(ok):
        return [Alignment(u.clip_id, a.duration, failed="audio too short for its transcript")
                for u, a in zip(utts, audio)]
    everything = np.concatenate([x for x, good in zip(feats, ok) if good])
    model = _global_model(everything)
    floor = cfg.var_floor * everything.var(0)
    garbage = slice(GARBAGE * STATES, N_UNITS * STATES)
    if synthetic is not None and any(s is not None for s in synthetic):
        from headflow.align.synth import synthetic_model

        silences = [x[a:b] for au, x, good in zip(audio, feats, ok) if good for a, b in au.quiet]
        init_model = synthetic_model(model, [s for s in synthetic if s is not None], silences, floor, cfg.var_mix)
        init_paths = []
        for x, g, good, pz, ld in zip(feats, graphs, ok, pauses, louds):
            path, score = (viterbi(g, emissions(init_model, x, g, pz, cfg.pause_penalty, ld, cfg.speech_penalty),
                                   init_model) if good
                           else (None, 0))
            init_paths.append(path if good and np.isfinite(score) else None)
    paths: list[np.ndarray | None] = []
    for i, (u, x, g) in enumerate(zip(utts, feats, graphs)):
        given = init_paths[i] if init_paths is not None else None
        paths.append(None if not ok[i] else given if given is not None and len(given) == len(x)
                     else uniform_path(g, len(x), audio[i].region))
    scores = [-np.inf] * len(utts)
    for it in range(cfg.iterations + 1):
        if (cfg.lda_dim > 0 and it == min(cfg.lda_at, cfg.iterations)
                and len(everything) >= LDA_MIN_FRAMES_PER_DIM * N_MFCC * (2 * cfg.lda_context + 1)):
            have = [i for i, p in enumerate(paths) if p is not None]
            lda = lda_transform([splice(feats[i][:, :N_MFCC], cfg.lda_context) for i in have],
                                [graphs[i].state[paths[i]] for i in have], cfg.lda_dim)
            feats = [(splice(x[:, :N_MFCC], cfg.lda_context) @ lda).astype(np.float32) for x in feats]
            everything = np.concatenate([x for x, good in zip(feats, ok) if good])
            model = _global_model(everything)
            floor = cfg.var_floor * everything.var(0)
        acc = Accumulator(model.n_states, model.weights.shape[1], everything.shape[1])
        for x, g, p in zip(feats, graphs, paths):
            if p is not None:
                acc.add(x, g.state[p], model)
        model = acc.update(model, floor)
        model.means[garbage], model.variances[garbage] = everything.mean(0), everything.var(0) * 1.5
        if it in cfg.split_at:
            model = split_mixtures(model)
        for i, (x, g) in enumerate(zip(feats, graphs)):
            if ok[i]:
                path, scores[i] = viterbi(g, emissions(model, x, g, pauses[i], cfg.pause_penalty, louds[i],
                                                       cfg.speech_penalty), model)
                paths[i] = path if np.isfinite(scores[i]) else paths[i]
    out = []
    for u, x, g, p, s, a in zip(utts, feats, graphs, paths, scores, audio):
        duration = a.duration
        if p is None or not np.isfinite(s):
            out.append(Alignment(u.clip_id, duration, failed=f"no alignment fits: {len(x)} frames for a graph "
                                                              f"needing at least {g.min_frames}"))
            continue
        al = _intervals(u, g, p, shift, duration, a.loud, onset_snap_frames(cfg))
        al.log_likelihood = float(s / len(x))
        out.append(al)
    return out
