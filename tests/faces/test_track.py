"""The tracker on synthetic faces: a fake detector and a fake landmark fitter that know the truth."""

from __future__ import annotations

import numpy as np

from headflow.faces.detect import Detection
from headflow.faces.params import SpeakerParams, TrackParams
from headflow.faces.track import (TrackStats, box_from_landmarks, box_relation, choose_speaker, iou, join_tracks,
                                   track_faces)

# A face template: 68 points in a unit box (any fixed layout works for the tracker).
_rng = np.random.default_rng(0)
TEMPLATE = _rng.uniform(0.15, 0.85, (68, 2))


def face_box(cx: float, cy: float, side: float) -> tuple[float, float, float, float]:
    return (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)


class Scene:
    """Faces as (T, 3) arrays of (cx, cy, side); nan rows = the face is absent on that frame."""

    def __init__(self, *faces: np.ndarray):
        self.faces = faces
        self.t = -1
        self.detect_calls = 0

    def frames(self, n: int):
        for t in range(n):
            self.t = t
            yield np.zeros((1, 1, 3), np.uint8)   # content unused: the fakes read self.t

    def boxes(self):
        return [face_box(*f[self.t]) for f in self.faces if not np.isnan(f[self.t]).any()]

    def detect(self, frame):
        self.detect_calls += 1
        return [Detection(b, 1.0) for b in self.boxes()]

    def fit(self, frame, box):
        # Snap to the true face the box overlaps most (like dlib); with no face, fill the box.
        best = max(self.boxes(), key=lambda b: iou(b, box), default=None)
        target = best if best is not None and iou(best, box) > 0.2 else box
        l, t, r, b = target
        return (TEMPLATE * [r - l, b - t] + [l, t]).astype(np.float32)


def linear(n: int, start, velocity, side: float) -> np.ndarray:
    t = np.arange(n)[:, None]
    return np.hstack([np.asarray(start) + t * np.asarray(velocity), np.full((n, 1), side)])


def test_box_relation_round_trip():
    lm = TEMPLATE * 100 + 20
    box = (10.0, 5.0, 130.0, 140.0)
    assert np.allclose(box_from_landmarks(lm, box_relation(box, lm)), box)
    # The relation moves and scales with the landmarks.
    moved = box_from_landmarks(lm * 2 + 7, box_relation(box, lm))
    assert np.allclose(moved, [2 * v + 7 for v in box])


def test_single_moving_face_is_followed_between_detections():
    n = 60
    face = linear(n, (100, 100), (3.0, 1.0), 80)   # 3 px/frame: 30 px between detections
    scene = Scene(face)
    tracks = track_faces(scene.frames(n), scene.detect, scene.fit, every=10, params=TrackParams())
    assert len(tracks) == 1
    tr = tracks[0]
    assert tr.frames == list(range(n))
    for t, box in zip(tr.frames, tr.boxes):
        assert iou(box, face_box(*face[t])) > 0.85, t
    assert scene.detect_calls == 6                  # frames 0, 10, ..., 50 only


def test_two_faces_keep_their_identity():
    n = 40
    a = linear(n, (80, 100), (1.0, 0.0), 70)
    b = linear(n, (260, 110), (-1.0, 0.5), 60)
    scene = Scene(a, b)
    tracks = track_faces(scene.frames(n), scene.detect, scene.fit, every=5, params=TrackParams())
    assert len(tracks) == 2
    for tr, truth in zip(sorted(tracks, key=lambda tr: tr.boxes[0][0]), (a, b)):
        assert len(tr.frames) == n
        assert all(iou(box, face_box(*truth[t])) > 0.85 for t, box in zip(tr.frames, tr.boxes))


def test_face_that_leaves_ends_the_track_without_extrapolation():
    n = 60
    face = linear(n, (100, 100), (0.5, 0.0), 80)
    face[25:] = np.nan                               # gone from frame 25 on
    scene = Scene(face)
    tracks = track_faces(scene.frames(n), scene.detect, scene.fit, every=5, params=TrackParams(max_missed=1))
    assert len(tracks) == 1
    # Last confirmation at frame 20; frames after it are dropped when the detector stops confirming.
    assert tracks[0].frames == list(range(21))


def test_track_resumes_after_a_gap():
    n = 50
    face = linear(n, (100, 100), (0.0, 0.0), 80)
    face[12:30] = np.nan
    scene = Scene(face)
    tracks = track_faces(scene.frames(n), scene.detect, scene.fit, every=5, params=TrackParams(max_missed=1))
    assert len(tracks) == 1                          # the same face comes back: the same track
    frames = set(tracks[0].frames)
    assert set(range(11)) <= frames and set(range(30, n)) <= frames and not frames & set(range(16, 30))


def test_speaker_choice_prefers_large_central_and_flags_ties():
    n, w, h = 30, 400, 300
    big_central = Scene(linear(n, (200, 150), (0, 0), 120), linear(n, (60, 60), (0, 0), 50))
    tracks = track_faces(big_central.frames(n), big_central.detect, big_central.fit, 5, TrackParams())
    choice = choose_speaker(tracks, n, w, h, SpeakerParams(), min_fraction=0.2)
    assert iou(tracks[choice.index].boxes[0], face_box(200, 150, 120)) > 0.9
    assert choice.runner_up_ratio < 0.5

    twins = Scene(linear(n, (100, 150), (0, 0), 90), linear(n, (300, 150), (0, 0), 90))
    tracks = track_faces(twins.frames(n), twins.detect, twins.fit, 5, TrackParams())
    choice = choose_speaker(tracks, n, w, h, SpeakerParams(), min_fraction=0.2)
    assert choice.runner_up_ratio > 0.95             # ambiguous: the stage quarantines, never guesses


def _texture(seed: int, shape=(120, 160)) -> np.ndarray:
    """A smooth random grey texture as an RGB uint8 frame (what a scene looks like to a thumbnail)."""
    import cv2

    noise = np.random.default_rng(seed).uniform(0, 255, (shape[0] // 8, shape[1] // 8)).astype(np.float32)
    grey = cv2.resize(noise, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def test_cut_detector_finds_hard_cuts_not_fades_or_motion():
    from headflow.faces.track import CutDetector

    scene = _texture(1)
    cut = CutDetector(threshold=20.0)
    # 1 px of camera shake per frame, then the picture reframed by 40 px at frame 15
    frames = [np.roll(scene, t % 2, axis=1) for t in range(15)] + [np.roll(scene, 40 + t % 2, axis=1) for t in range(10)]
    assert [t for t, f in enumerate(frames) if cut(f)] == [15]
    fade = CutDetector(threshold=20.0)      # black to the picture over 8 frames: ~16 grey levels a step
    frames = [(scene * min(1.0, t / 8)).astype(np.uint8) for t in range(16)]
    assert not any(fade(f) for f in frames)
    pan = CutDetector(threshold=20.0)       # a fast pan: every frame differs a lot, none stands out
    frames = [np.roll(scene, 12 * t, axis=1) for t in range(20)]
    assert sum(pan(f) for f in frames) <= 1  # at most the first frame of the motion


class CutScene(Scene):
    """A Scene whose picture is one texture before `cut` and another from `cut` on."""

    def __init__(self, cut: int, *faces: np.ndarray):
        super().__init__(*faces)
        self.cut = cut
        self.pictures = (_texture(2, (300, 400)), _texture(3, (300, 400)))

    def frames(self, n: int):
        for t in range(n):
            self.t = t
            yield self.pictures[t >= self.cut]


def test_a_jump_cut_ends_the_track_and_refinds_the_face_on_the_cut_frame():
    n, cut = 45, 23
    face = np.vstack([linear(cut, (120, 150), (0, 0), 90), linear(n - cut, (260, 140), (0, 0), 110)])
    scene = CutScene(cut, face)
    stats = TrackStats()
    tracks = track_faces(scene.frames(n), scene.detect, scene.fit, every=10, params=TrackParams(), stats=stats)
    assert stats.cuts == [cut]
    before, after = sorted(tracks, key=lambda tr: tr.frames[0])
    assert before.frames == list(range(cut)) and after.frames == list(range(cut, n))   # no frame lost
    choice = choose_speaker(tracks, n, 400, 300, SpeakerParams(), min_fraction=0.2)
    assert choice.chain == (before.id, after.id) and choice.runner_up_ratio == 0.0   # one speaker, not two
    joined = join_tracks([tracks[i] for i in choice.chain])
    assert joined.frames == list(range(n))
    # without cut detection the old box is followed until the next detection run (frame 30) fails to
    # confirm it, and its unconfirmed tail after frame 20 is dropped: frames 21-29 have no face
    blind = CutScene(cut, face)
    tracks = track_faces(blind.frames(n), blind.detect, blind.fit, every=10, params=TrackParams(cut_threshold=0))
    assert sorted(f for tr in tracks for f in tr.frames) == [*range(21), *range(30, n)]


def test_tracks_that_do_not_overlap_join_unless_they_are_different_people():
    n, w, h = 40, 400, 300
    face = np.vstack([linear(20, (150, 150), (0, 0), 90), linear(20, (250, 150), (0, 0), 90)])
    scene = CutScene(20, face)
    tracks = track_faces(scene.frames(n), scene.detect, scene.fit, 10, TrackParams())
    assert len(tracks) == 2
    same = choose_speaker(tracks, n, w, h, SpeakerParams(), 0.2, same_person=lambda a, b: 0.3)
    assert len(same.chain) == 2 and same.runner_up_ratio == 0.0 and not same.refused
    other = choose_speaker(tracks, n, w, h, SpeakerParams(), 0.2, same_person=lambda a, b: 0.9)
    assert len(other.chain) == 1 and other.runner_up_ratio > 0.8 and not other.runner_up_overlaps
    assert [d for _, _, d in other.refused] == [0.9]
