"""Monophone HMMs with diagonal-Gaussian-mixture emissions: the graph of one utterance, Viterbi
forced alignment, and Viterbi (hard-assignment) re-estimation.

Every unit (phone, SIL, GARBAGE for words with no pronunciation) has `STATES` left-to-right
emitting states; each state loops on itself or moves on. An utterance is a chain of segments
(one per phone instance); optional segments (silence between words) may be skipped.

Why our own code: forced alignment chains SHARED phone models into a new graph per utterance (with
skippable silences) and re-estimates them from every utterance's alignment; hmmlearn, the HMM
library on PyPI, fits one fixed-topology model to sequences and has no transcript-constrained
alignment, and Kaldi / HTK do not install from PyPI. ~240 lines (numpy, Viterbi in numba) do exactly this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

STATES = 3
LOG_2PI = float(np.log(2 * np.pi))


@dataclass
class Segment:
    unit: int        # unit index in the model
    word: int        # word position in the utterance, -1 for silence between words
    optional: bool
    alt: int = 0     # pronunciation variant of `word` this segment belongs to (0: the first)


@dataclass
class Graph:
    """One utterance's HMM: node j is state `state[j]` of the model, reached from `pred[j]`."""

    state: np.ndarray     # (N,) int64 model state of each node
    segment: np.ndarray   # (N,) int64 segment of each node
    pred: np.ndarray      # (N, K) int64 predecessor nodes besides j itself, -1 = none (K >= 3)
    branch: np.ndarray    # (N, K) float64 log prob of taking that branch (optional-silence choice)
    start: np.ndarray     # (N,) bool: may start here
    end: np.ndarray       # (N,) bool: may end here
    segments: list[Segment]
    min_frames: int       # the shortest path through the graph


_START = -2  # the frontier's marker for "the utterance may start here"


def build_graph(segments: list[Segment], log_p_sil: float = np.log(0.4)) -> Graph:
    """Chain the segments; an optional segment can be entered (log_p_sil) or jumped over (log(1 - p_sil)).

    Pronunciation variants: the non-optional segments of one word with `alt` k > 0 form a parallel chain
    to its alt-0 chain (same entries, same exits, no extra cost: every listed pronunciation is equally
    likely, as in a dictionary without pronunciation probabilities). Variant chains may sit anywhere in
    `segments` (builtin.segments_for appends them after the rest, so the alt-0 nodes keep the numbering
    of a graph without variants). Consecutive non-optional segments of one word and variant form one
    chain; the order of items (optional segments, words) is that of their alt-0 segments. A path may
    start at any item that only optional items precede, and end likewise; starting costs nothing.

    Raises:
        ValueError: a word has a variant chain but no alt-0 chain.
    """
    n_seg = len(segments)
    n = n_seg * STATES
    state = np.empty(n, np.int64)
    seg_of = np.repeat(np.arange(n_seg), STATES)
    preds: list[list[tuple[int, float]]] = [[] for _ in range(n)]
    start = np.zeros(n, bool)
    end = np.zeros(n, bool)
    log_skip = np.log1p(-np.exp(log_p_sil))
    items: list[tuple[str, int]] = []               # ("opt", segment) or ("word", word) in order
    chains: dict[int, dict[int, list[int]]] = {}     # word -> alt -> its segments in order
    for s, seg in enumerate(segments):
        first = s * STATES
        state[first:first + STATES] = seg.unit * STATES + np.arange(STATES)
        for k in range(1, STATES):
            preds[first + k].append((first + k - 1, 0.0))
        if seg.optional:
            items.append(("opt", s))
            continue
        chains.setdefault(seg.word, {}).setdefault(seg.alt, []).append(s)
        if seg.alt == 0 and items[-1:] != [("word", seg.word)]:
            items.append(("word", seg.word))
    for w, by_alt in chains.items():
        if 0 not in by_alt:
            raise ValueError(f"build_graph: word {w} has pronunciation variants {sorted(by_alt)} but no alt-0 "
                             "segments; give every word its first pronunciation with alt=0")
    # frontier: the nodes (last state of a segment, or _START) the next item may be entered from, with the
    # log prob of the branch; entering an optional item costs log_p_sil, jumping over it log_skip
    frontier: list[tuple[int, float]] = [(_START, 0.0)]
    min_segs = 0
    for kind, key in items:
        if kind == "opt":
            first = key * STATES
            for node, lp in frontier:
                if node == _START:
                    start[first] = True
                else:
                    preds[first].append((node, lp + log_p_sil))
            frontier = [(first + STATES - 1, 0.0)] + [(node, lp + log_skip) for node, lp in frontier]
            continue
        exits = []
        for chain in chains[key].values():
            for a, b in zip(chain[:-1], chain[1:]):
                preds[b * STATES].append((a * STATES + STATES - 1, 0.0))
            first = chain[0] * STATES
            for node, lp in frontier:
                if node == _START:
                    start[first] = True
                else:
                    preds[first].append((node, lp))
            exits.append((chain[-1] * STATES + STATES - 1, 0.0))
        min_segs += min(len(c) for c in chains[key].values())
        frontier = exits
    for node, _ in frontier:
        if node != _START:
            end[node] = True
    width = max(3, max(len(p) for p in preds) if preds else 0)
    pred = np.full((n, width), -1, np.int64)
    branch = np.zeros((n, width))
    for j, p in enumerate(preds):
        for k, (node, lp) in enumerate(p):
            pred[j, k], branch[j, k] = node, lp
    return Graph(state, seg_of, pred, branch, start, end, segments, max(STATES * min_segs, STATES))


@dataclass
class GaussianModel:
    """Emission and transition parameters of every state of every unit."""

    weights: np.ndarray    # (S, K)
    means: np.ndarray      # (S, K, D)
    variances: np.ndarray  # (S, K, D)
    self_loop: np.ndarray  # (S,) probability of staying in the state

    @property
    def n_states(self) -> int:
        return len(self.weights)

    def log_likelihood(self, x: np.ndarray, states: np.ndarray | None = None) -> np.ndarray:
        """(T, S) log p(x_t | state s), each state a diagonal GMM; only `states` are computed when given
        (the others are left at -inf)."""
        states = np.arange(self.n_states) if states is None else states
        mu, var, w = self.means[states], self.variances[states], self.weights[states]
        s, k, d = mu.shape
        prec = 1.0 / var.reshape(s * k, d)
        mp = mu.reshape(s * k, d) * prec
        const = (-0.5 * (np.sum(mu.reshape(s * k, d) * mp, 1) + np.sum(np.log(var.reshape(s * k, d)), 1)
                         + d * LOG_2PI) + np.log(np.maximum(w.reshape(s * k), 1e-30)))
        x = x.astype(np.float32)
        ll = (-0.5 * (x * x) @ prec.T.astype(np.float32) + x @ mp.T.astype(np.float32)).astype(np.float64) + const
        if k > 1:
            ll = ll.reshape(len(x), s, k)
            top = ll.max(2, keepdims=True)
            ll = (top + np.log(np.sum(np.exp(ll - top), 2, keepdims=True)))[:, :, 0]
        out = np.full((len(x), self.n_states), -np.inf)
        out[:, states] = ll
        return out


@njit(cache=True)
def _viterbi(emit, self_lp, exit_lp, pred, branch, start, end):  # pragma: no cover - numba
    t_len, n = emit.shape
    neg = -1e300
    delta = np.full(n, neg)
    bp = np.zeros((t_len, n), np.int32)
    for j in range(n):
        if start[j]:
            delta[j] = emit[0, j]
    new = np.empty(n)
    for t in range(1, t_len):
        for j in range(n):
            best = delta[j] + self_lp[j]
            arg = j
            for k in range(pred.shape[1]):
                p = pred[j, k]
                if p < 0:
                    break
                v = delta[p] + exit_lp[p] + branch[j, k]
                if v > best:
                    best = v
                    arg = p
            new[j] = best + emit[t, j]
            bp[t, j] = arg
        delta[:] = new
    best, arg = neg, -1
    for j in range(n):
        if end[j] and delta[j] > best:
            best = delta[j]
            arg = j
    path = np.empty(t_len, np.int64)
    if arg < 0:
        return path, neg
    path[t_len - 1] = arg
    for t in range(t_len - 1, 0, -1):
        path[t - 1] = bp[t, path[t]]
    return path, best


def viterbi(graph: Graph, state_ll: np.ndarray, model: GaussianModel) -> tuple[np.ndarray, float]:
    """Best node path (T,) through `graph` given per-frame state log-likelihoods (T, S); score -inf
    when no path fits (fewer frames than the graph's minimum)."""
    if len(state_ll) < graph.min_frames:
        return np.zeros(len(state_ll), np.int64), -np.inf
    a = np.clip(model.self_loop[graph.state], 1e-3, 1 - 1e-3)
    path, score = _viterbi(np.ascontiguousarray(state_ll[:, graph.state]), np.log(a), np.log1p(-a),
                           graph.pred, graph.branch, graph.start, graph.end)
    return path, (score if score > -1e299 else -np.inf)


def uniform_path(graph: Graph, n_frames: int, region: tuple[int, int]) -> np.ndarray:
    """A flat-start path: optional segments (silence) outside `region`, the rest spread evenly inside it."""
    segs = graph.segments
    speech = [i for i, g in enumerate(segs) if not g.optional and g.alt == 0]
    lead = next((i for i, g in enumerate(segs) if g.optional and i < (speech[0] if speech else 1)), None)
    tail = next((i for i in range(len(segs) - 1, -1, -1) if segs[i].optional and i > (speech[-1] if speech else -1)), None)
    lo, hi = region
    if lead is None:
        lo = 0
    if tail is None:
        hi = n_frames
    if (hi - lo) < STATES * len(speech):
        lo, hi = 0, n_frames
        lead = tail = None
    path = np.empty(n_frames, np.int64)
    if lead is not None:
        path[:lo] = lead * STATES + (np.arange(lo) * STATES // max(lo, 1))
    if tail is not None:
        path[hi:] = tail * STATES + (np.arange(n_frames - hi) * STATES // max(n_frames - hi, 1))
    units = np.array([s * STATES + k for s in speech for k in range(STATES)])
    path[lo:hi] = units[(np.arange(hi - lo) * len(units)) // (hi - lo)]
    return path


class Accumulator:
    """Sufficient statistics of hard (Viterbi) state assignments, soft over mixture components."""

    def __init__(self, n_states: int, n_comp: int, dim: int):
        self.occ = np.zeros((n_states, n_comp))
        self.sum = np.zeros((n_states, n_comp, dim))
        self.sq = np.zeros((n_states, n_comp, dim))
        self.frames = np.zeros(n_states)
        self.visits = np.zeros(n_states)

    def add(self, x: np.ndarray, states: np.ndarray, model: GaussianModel) -> None:
        """x (T, D) frames assigned to model states `states` (T,)."""
        k = model.weights.shape[1]
        if k == 1:
            resp = np.ones((len(x), 1))
        else:
            prec = 1.0 / model.variances[states]             # (T, K, D)
            diff = x[:, None, :] - model.means[states]
            ll = -0.5 * np.sum(diff * diff * prec + np.log(model.variances[states]), 2) + np.log(
                np.maximum(model.weights[states], 1e-30))
            ll -= ll.max(1, keepdims=True)
            resp = np.exp(ll)
            resp /= resp.sum(1, keepdims=True)
        np.add.at(self.occ, states, resp)
        np.add.at(self.sum, states, resp[:, :, None] * x[:, None, :])
        np.add.at(self.sq, states, resp[:, :, None] * (x * x)[:, None, :])
        np.add.at(self.frames, states, 1)
        entries = np.r_[True, states[1:] != states[:-1]]
        np.add.at(self.visits, states[entries], 1)

    def update(self, model: GaussianModel, var_floor: np.ndarray, min_frames: float = 3.0) -> GaussianModel:
        """New parameters; states with too little data keep their old ones."""
        w, mu, var, a = model.weights.copy(), model.means.copy(), model.variances.copy(), model.self_loop.copy()
        for s in np.flatnonzero(self.frames >= min_frames):
            occ = self.occ[s]
            good = occ > 1e-3
            w[s] = np.where(good, occ / occ.sum(), 1e-30)
            m = self.sum[s][good] / occ[good, None]
            mu[s][good] = m
            var[s][good] = np.maximum(self.sq[s][good] / occ[good, None] - m * m, var_floor)
            a[s] = (self.frames[s] - self.visits[s]) / self.frames[s]
        return GaussianModel(w, mu, var, np.clip(a, 0.05, 0.95))


def split_mixtures(model: GaussianModel, eps: float = 0.2) -> GaussianModel:
    """Double every state's mixture: each Gaussian becomes two, means pushed apart by eps * stddev."""
    sd = np.sqrt(model.variances)
    means = np.concatenate([model.means - eps * sd, model.means + eps * sd], 1)
    return GaussianModel(np.concatenate([model.weights, model.weights], 1) / 2, means,
                         np.concatenate([model.variances, model.variances], 1), model.self_loop)
