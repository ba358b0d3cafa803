"""Face tracks: detect every k frames, follow each face with its landmarks in between.

Between detections the box of frame t+1 comes from the landmarks of frame t: the box is expressed
in the landmarks' own frame (centroid + RMS radius), so it keeps the detector's box convention as
the face moves and scales. A detection run matches boxes to tracks by IoU; a track that detection
runs stop confirming ends (its unconfirmed tail is dropped, not guessed), and a frame whose fitted
landmarks disagree with the box they were fitted in forces a re-detection on the next frame.

Shot cuts (a vlog's jump cut, an edit between takes): a frame whose grey thumbnail differs from the
previous one far more than the frames before it did (`CutDetector`) starts a new shot. Every live
track ends on the frame before it (its tail kept: nothing contradicted it) and detection runs on the
cut frame itself, so the face is re-found at once wherever the new framing puts it.

Main speaker (`choose_speaker`): tracks that do not overlap in time are not competing speakers. Tracks
are joined into chains of pairwise non-overlapping tracks (best-scoring first), each chain is one
candidate speaker scored by the sum of its tracks' scores, and only chains compete. A `same_person`
check (the caller's: dlib descriptors in faces.py) can refuse to join two tracks, e.g. the two sides of
a cut in an interview; the choice then says that its runner-up does not overlap the winner
(`runner_up_overlaps`), so the caller can name the cut rather than call it an ambiguous speaker.

Pure: the detector, the landmark fitter and the identity check are passed in, so tests drive it with
synthetic faces.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from headflow.faces.detect import Detection
from headflow.faces.params import SpeakerParams, TrackParams
from headflow.landmarks68 import UPPER_FACE

Box = tuple[float, float, float, float]          # left, top, right, bottom
LandmarkFn = Callable[[np.ndarray, Box], np.ndarray]  # (frame, box) -> (68, 2) float32


def iou(a: Box, b: Box) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def landmark_frame(lm: np.ndarray) -> tuple[np.ndarray, float]:
    """Centroid (2,) and RMS radius of the brows, nose and eyes (`UPPER_FACE`) of (68, 2) landmarks.

    The frame moves and scales with the head. Not all 68 points: these move with the head, not the
    jaw, so a talking mouth does not rescale the box (with all 68 points the box grows as the mouth
    opens, and the growth feeds back).
    """
    p = lm[UPPER_FACE]
    c = p.mean(axis=0)
    return c, float(np.sqrt(((p - c) ** 2).sum(axis=1).mean()))


def box_relation(box: Box, lm: np.ndarray) -> np.ndarray:
    """`box` in the landmarks' frame: (4,) offsets of l, t, r, b from the centroid in radii."""
    c, s = landmark_frame(lm)
    return np.array([(box[0] - c[0]) / s, (box[1] - c[1]) / s, (box[2] - c[0]) / s, (box[3] - c[1]) / s])


def box_from_landmarks(lm: np.ndarray, relation: np.ndarray) -> Box:
    """The box with `relation` to landmarks `lm` (inverse of `box_relation`)."""
    c, s = landmark_frame(lm)
    return (float(c[0] + relation[0] * s), float(c[1] + relation[1] * s),
            float(c[0] + relation[2] * s), float(c[1] + relation[3] * s))


@dataclass
class Track:
    """One face followed through a clip."""

    id: int
    frames: list[int] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)          # box the landmarks were fitted in
    landmarks: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)       # detector score where detected, else nan
    relation_sum: np.ndarray = field(default_factory=lambda: np.zeros(4))
    hits: int = 0               # detection runs that confirmed it
    missed: int = 0             # detection runs in a row that did not
    last_hit: int = -1          # frame of the last confirmation
    alive: bool = True
    merged: bool = False        # a duplicate of another track (excluded from speaker choice)
    shot: int = 0               # the shot it lives in (tracks never continue across a cut)

    @property
    def relation(self) -> np.ndarray:
        return self.relation_sum / max(self.hits, 1)

    def predict(self) -> Box:
        return box_from_landmarks(self.landmarks[-1], self.relation)

    def end(self, keep_tail: bool = False) -> None:
        """Stop the track; frames after its last confirmation are dropped (never extrapolated),
        unless `keep_tail` (the clip ended while no detection run had contradicted the track)."""
        keep = [i for i, f in enumerate(self.frames) if keep_tail or f <= self.last_hit]
        self.frames = [self.frames[i] for i in keep]
        self.boxes = [self.boxes[i] for i in keep]
        self.landmarks = [self.landmarks[i] for i in keep]
        self.scores = [self.scores[i] for i in keep]
        self.alive = False

    def box_sides(self) -> np.ndarray:
        b = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        return np.sqrt((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))


@dataclass
class TrackStats:
    n_detect_runs: int = 0
    cuts: list[int] = field(default_factory=list)
    """Frames that start a new shot (a cut lies between frame t-1 and t)."""


def thumbnail(frame: np.ndarray, width: int = 64) -> np.ndarray:
    """Grey (h, `width`) float32 thumbnail of an RGB (or grey) uint8 frame, area-averaged."""
    import cv2

    g = frame if frame.ndim == 2 else cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    h = max(1, int(round(g.shape[0] * width / g.shape[1])))
    return cv2.resize(g, (width, h), interpolation=cv2.INTER_AREA).astype(np.float32)


class CutDetector:
    """Hard cuts: frame t starts a new shot when the mean absolute difference (grey levels, 0-255) of the
    64-px-wide thumbnails of frames t-1 and t exceeds `threshold` and `ratio` x the median of the
    previous `history` differences (so a stretch of fast motion is not a run of cuts).

    Measured on the real-world cases (../shared/cases): consecutive talking-head frames differ by 0.3-0.9,
    a jump cut reframing the picture by 100 px by 67, a fast fade-in by up to 14 per frame. A fade is
    not a cut, and a false cut only costs a re-detection and a smoothing break.
    """

    def __init__(self, threshold: float, ratio: float = 5.0, history: int = 10):
        self.threshold, self.ratio, self.history = threshold, ratio, history
        self.previous: np.ndarray | None = None
        self.diffs: list[float] = []

    def __call__(self, frame: np.ndarray) -> bool:
        """Feed the next frame; True when it starts a new shot."""
        thumb = thumbnail(frame)
        prev, self.previous = self.previous, thumb
        if prev is None or prev.shape != thumb.shape:
            return False
        d = float(np.abs(thumb - prev).mean())
        recent = self.diffs[-self.history:]
        self.diffs.append(d)
        typical = float(np.median(recent)) if recent else 0.0
        return d > self.threshold and d > self.ratio * typical


def _match(dets: list[Detection], boxes: list[Box], min_iou: float) -> list[tuple[int, int]]:
    """Greedy IoU matching: pairs (det index, box index), best IoU first."""
    pairs = sorted(((iou(d.box, b), i, j) for i, d in enumerate(dets) for j, b in enumerate(boxes)), reverse=True)
    used_d, used_b, out = set(), set(), []
    for v, i, j in pairs:
        if v < min_iou:
            break
        if i not in used_d and j not in used_b:
            used_d.add(i)
            used_b.add(j)
            out.append((i, j))
    return out


def track_faces(frames: Iterable[np.ndarray], detect: Callable[[np.ndarray], list[Detection]],
                fit_landmarks: LandmarkFn, every: int, params: TrackParams,
                stats: TrackStats | None = None) -> list[Track]:
    """Follow every face through `frames`.

    Args:
        frames: RGB frames in order (consumed once, so a decoder can stream them).
        detect: detector on a frame.
        fit_landmarks: the 68-point fitter.
        every: detection period in frames; detection also runs when nothing is tracked, a track
            became inconsistent on the previous frame, or the frame starts a new shot.
        params: matching, loss and cut detection (`cut_threshold`; 0 disables).
        stats: filled with the number of detection runs and the cut frames.
    """
    stats = stats if stats is not None else TrackStats()
    cut = CutDetector(params.cut_threshold) if params.cut_threshold > 0 else None
    tracks: list[Track] = []
    force = False
    shot = 0
    for t, frame in enumerate(frames):
        if cut is not None and cut(frame):
            stats.cuts.append(t)
            shot += 1
            for tr in tracks:
                if tr.alive:
                    tr.end(keep_tail=True)   # the shot ended; nothing had contradicted the track
            force = True
        alive = [tr for tr in tracks if tr.alive]
        preds = [tr.predict() for tr in alive]
        run = force or not alive or t % every == 0
        force = False
        box_of: dict[int, tuple[Box, float]] = {id(tr): (p, np.nan) for tr, p in zip(alive, preds)}
        confirmed: set[int] = set()
        if run:
            stats.n_detect_runs += 1
            dets = detect(frame)
            pairs = _match(dets, preds, params.iou_match)
            for i, j in pairs:
                tr = alive[j]
                box_of[id(tr)] = (dets[i].box, dets[i].score)
                confirmed.add(id(tr))
            for tr in alive:
                if id(tr) not in confirmed:
                    tr.missed += 1
                    if tr.missed > params.max_missed:
                        tr.end()
                        box_of.pop(id(tr))
            matched = {i for i, _ in pairs}
            for i, d in enumerate(dets):
                if i in matched:
                    continue
                dead = [tr for tr in tracks if not tr.alive and not tr.merged and tr.frames and tr.shot == shot
                        and iou(tr.boxes[-1], d.box) >= params.iou_match]
                tr = max(dead, key=lambda x: x.frames[-1]) if dead else Track(id=len(tracks), shot=shot)
                if not dead:
                    tracks.append(tr)
                tr.alive, tr.missed = True, 0
                box_of[id(tr)] = (d.box, d.score)
                confirmed.add(id(tr))
        for tr in tracks:
            if id(tr) not in box_of:
                continue
            box, score = box_of[id(tr)]
            lm = fit_landmarks(frame, box)
            if id(tr) in confirmed:
                tr.relation_sum += box_relation(box, lm)
                tr.hits += 1
                tr.missed = 0
                tr.last_hit = t
            elif iou(box_from_landmarks(lm, tr.relation), box) < params.min_consistency:
                force = True        # the face moved away from its box: re-detect on the next frame
                continue
            tr.frames.append(t)
            tr.boxes.append(tuple(float(v) for v in box))
            tr.landmarks.append(lm.astype(np.float32))
            tr.scores.append(float(score))
        _merge_duplicates([tr for tr in tracks if tr.alive], t)
    for tr in tracks:
        if tr.alive:
            tr.end(keep_tail=tr.missed == 0)
    return [tr for tr in tracks if tr.frames]


def _merge_duplicates(alive: list[Track], t: int, min_iou: float = 0.5) -> None:
    """Two live tracks on the same face at frame t: keep the better-established one."""
    current = [tr for tr in alive if tr.frames and tr.frames[-1] == t]
    for a in current:
        for b in current:
            if a is b or not a.alive or not b.alive:
                continue
            if iou(a.boxes[-1], b.boxes[-1]) >= min_iou:
                loser = b if (a.hits, -a.id) >= (b.hits, -b.id) else a
                loser.alive, loser.merged = False, True


@dataclass(frozen=True)
class SpeakerChoice:
    index: int | None          # into the track list: the best chain's best track; None when there is no candidate
    scores: tuple[float, ...]  # per track (0 for tracks that do not compete)
    runner_up_ratio: float     # second-best / best chain score (0 with a single candidate)
    chain: tuple[int, ...] = ()  # the chosen speaker's tracks, in time order (pairwise non-overlapping)
    runner_up_overlaps: bool = True  # the runner-up shares frames with the winner (False: a refused join)
    refused: tuple[tuple[int, int, float], ...] = ()  # joins same_person refused: (track, track, distance)


def overlaps(a: Track, b: Track) -> bool:
    """Whether two tracks' frame spans share a frame."""
    return a.frames[0] <= b.frames[-1] and b.frames[0] <= a.frames[-1]


SamePerson = Callable[[Track, Track], float]
"""(earlier track, later track) -> identity distance (dlib descriptors: same person below ~0.6)."""


def speaker_scores(tracks: list[Track], n_frames: int, width: int, height: int, params: SpeakerParams,
                   min_fraction: float) -> list[float]:
    """Score of each track as the main speaker: coverage x size and/or centrality."""
    half_diag = 0.5 * float(np.hypot(width, height))
    best_side = max((float(np.median(tr.box_sides())) for tr in tracks), default=1.0)
    out = []
    for tr in tracks:
        coverage = len(tr.frames) / max(n_frames, 1)
        if tr.merged or coverage < min_fraction:
            out.append(0.0)
            continue
        b = np.asarray(tr.boxes)
        cx, cy = np.median((b[:, 0] + b[:, 2]) / 2), np.median((b[:, 1] + b[:, 3]) / 2)
        centrality = max(0.0, 1.0 - float(np.hypot(cx - width / 2, cy - height / 2)) / half_diag)
        size = float(np.median(tr.box_sides())) / best_side
        score = {"largest_central": size * centrality, "largest": size, "central": centrality}[params.rule]
        out.append(coverage * score)
    return out


def chains(tracks: list[Track], scores: list[float], same_person: SamePerson | None = None,
           max_distance: float = 0.6) -> tuple[list[list[int]], list[tuple[int, int, float]]]:
    """Greedy chains of pairwise non-overlapping scored tracks, best chain first.

    Each chain starts from the best remaining track and takes, best first, every remaining track that
    overlaps none of its members and (with `same_person`) is within `max_distance` of the member just
    before it in time. Returns (chains as track indices in time order, sorted by summed score; the
    refused joins (earlier track, later track, distance)).
    """
    remaining = sorted((i for i, sc in enumerate(scores) if sc > 0), key=lambda i: -scores[i])
    out, refused = [], []
    while remaining:
        chain = [remaining[0]]
        for i in remaining[1:]:
            if any(overlaps(tracks[i], tracks[j]) for j in chain):
                continue
            if same_person is not None:
                before = [j for j in chain if tracks[j].frames[-1] < tracks[i].frames[0]]
                after = [j for j in chain if tracks[j].frames[0] > tracks[i].frames[-1]]
                pairs = ([(max(before, key=lambda j: tracks[j].frames[-1]), i)] if before else []) + \
                        ([(i, min(after, key=lambda j: tracks[j].frames[0]))] if after else [])
                dist = [(a, b, float(same_person(tracks[a], tracks[b]))) for a, b in pairs]
                bad = [d for d in dist if not d[2] <= max_distance]
                if bad:
                    refused.extend(bad)
                    continue
            chain.append(i)
        out.append(sorted(chain, key=lambda j: tracks[j].frames[0]))
        remaining = [i for i in remaining if i not in chain]
    out.sort(key=lambda c: -sum(scores[i] for i in c))
    return out, refused


def choose_speaker(tracks: list[Track], n_frames: int, width: int, height: int, params: SpeakerParams,
                   min_fraction: float, same_person: SamePerson | None = None) -> SpeakerChoice:
    """The main speaker: the best chain of non-overlapping tracks (see the module docstring).

    Args:
        same_person: optional identity distance of two tracks; joins above
            `params.same_person_distance` are refused.
    """
    scores = speaker_scores(tracks, n_frames, width, height, params, min_fraction)
    found, refused = chains(tracks, scores, same_person, params.same_person_distance)
    if not found:
        return SpeakerChoice(None, tuple(scores), 0.0)
    best = found[0]
    total = [sum(scores[i] for i in c) for c in found]
    ratio = total[1] / total[0] if len(found) > 1 else 0.0
    runner_overlaps = len(found) < 2 or any(overlaps(tracks[i], tracks[j]) for i in found[1] for j in best)
    return SpeakerChoice(max(best, key=lambda i: scores[i]), tuple(scores), float(ratio), tuple(best),
                         runner_overlaps, tuple(refused))


def join_tracks(parts: list[Track]) -> Track:
    """One track following a speaker through non-overlapping `parts` (in time order): frames, boxes,
    landmarks and scores concatenated; the box relation averaged over every confirmation."""
    if len(parts) == 1:
        return parts[0]
    out = Track(id=parts[0].id)
    for tr in parts:
        out.frames += tr.frames
        out.boxes += tr.boxes
        out.landmarks += tr.landmarks
        out.scores += tr.scores
        out.relation_sum = out.relation_sum + tr.relation_sum
        out.hits += tr.hits
    out.last_hit = max(tr.last_hit for tr in parts)
    out.alive = False
    return out
