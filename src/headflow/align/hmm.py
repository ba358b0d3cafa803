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


@dataclass
class Graph:
    """One utterance's HMM: node j is state `state[j]` of the model, reached from `pred[j]`."""

    state: np.ndarray     # (N,) int64 model state of each node
    segment: np.ndarray   # (N,) int64 segment of each node
    pred: np.ndarray      # (N, 3) int64 predecessor nodes besides j itself, -1 = none
    branch: np.ndarray    # (N, 3) float64 log prob of taking that branch (optional-silence choice)
    start: np.ndarray     # (N,) bool: may start here
    end: np.ndarray       # (N,) bool: may end here
    segments: list[Segment]
    min_frames: int       # the shortest path through the graph


def build_graph(segments: list[Segment], log_p_sil: float = np.log(0.4)) -> Graph:
    """Chain the segments; an optional segment can be entered (log_p_sil) or jumped over."""
    n_seg = len(segments)
    n = n_seg * STATES
    state = np.empty(n, np.int64)
    seg_of = np.repeat(np.arange(n_seg), STATES)
    pred = np.full((n, 3), -1, np.int64)
    branch = np.zeros((n, 3))
    start = np.zeros(n, bool)
    end = np.zeros(n, bool)
    log_skip = np.log1p(-np.exp(log_p_sil))
    for s, seg in enumerate(segments):
        first = s * STATES
        state[first:first + STATES] = seg.unit * STATES + np.arange(STATES)
        for k in range(1, STATES):
            pred[first + k, 0] = first + k - 1
        # entries into the first node of segment s: from the previous segment's last node, and from the one
        # before it when the previous segment is optional (skipped); entering an optional one costs log_p_sil
        k, back = 0, s - 1
        enter = log_p_sil if seg.optional else 0.0
        while back >= 0:
            pred[first, k] = back * STATES + STATES - 1
            branch[first, k] = enter + (log_skip if back < s - 1 else 0.0)
            k += 1
            if not segments[back].optional or k == 3:
                break
            back -= 1
        if s == 0 or all(g.optional for g in segments[:s]):
            start[first] = True
        if s == n_seg - 1 or all(g.optional for g in segments[s + 1:]):
            end[first + STATES - 1] = True
    # a path may also start inside: never. A skipped leading optional costs nothing (start prior is flat).
    min_frames = STATES * sum(not g.optional for g in segments)
    return Graph(state, seg_of, pred, branch, start, end, segments, max(min_frames, STATES))


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
            for k in range(3):
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
    speech = [i for i, g in enumerate(segs) if not g.optional]
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
