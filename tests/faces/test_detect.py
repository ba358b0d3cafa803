"""The dlib HOG detector wrapper: boxes in source pixels, adaptive detection scale, fallbacks."""

from __future__ import annotations

import numpy as np

from headflow.faces.detect import DlibHogDetector, make_detector
from headflow.faces.params import DetectParams


class FakeHog:
    """A HOG stand-in: a face of `side` source px, seen when >= 60 px at the detection scale (or
    with one upsampling step); like dlib's, its boxes are never smaller than 72 px at that scale."""

    def __init__(self, side: float):
        self.side = side
        self.calls: list[tuple[int, int]] = []

    def __call__(self, image, upsample):
        self.calls.append((image.shape[1], upsample))
        scale = image.shape[1] / 400                  # frames are 400 px wide
        k = 2 ** upsample                             # dlib upsamples internally, reports input pixels
        if self.side * scale * k < 60:
            return []
        box = max(self.side * scale, 72 / k)
        return [(10 * scale, 10 * scale, 10 * scale + box, 10 * scale + box, 1.0)]


def detector(side: float, **kw) -> tuple[DlibHogDetector, FakeHog]:
    d = DlibHogDetector(DetectParams(**kw))
    fake = FakeHog(side)
    d._detect = fake
    return d, fake


FRAME = np.zeros((300, 400, 3), np.uint8)


def test_boxes_are_mapped_back_to_source_pixels():
    d, _ = detector(300)
    (det,) = d(FRAME)
    assert np.allclose(det.box, (10, 10, 310, 310))      # 150 px at scale 0.5 -> 300 source px


def test_scale_rises_for_small_faces_then_stays():
    d, fake = detector(140)          # 70 px at 0.5: found, but with the 72 px minimum box (144 source px)
    (det,) = d(FRAME)
    assert abs(d.scale - 100 / 144) < 1e-6 and len(fake.calls) == 2
    assert abs(det.box[2] - det.box[0] - 140) < 1         # the re-run at the new scale gives the true size
    fake.calls.clear()
    for _ in range(3):
        d(FRAME)
    assert len(fake.calls) == 3                          # one run per call once adapted: no creeping


def test_full_resolution_fallback_finds_small_faces():
    d, fake = detector(50)                               # 25 px at 0.5, 50 at 1.0: needs upsampling
    (det,) = d(FRAME)
    assert fake.calls == [(200, 0), (400, 0), (400, 1)] and d.scale == 1.0
    assert abs(det.box[2] - det.box[0] - 50) < 1e-6
    d2, fake2 = detector(50, full_res_fallback=False)
    assert d2(FRAME) == [] and len(fake2.calls) == 1


def test_default_backend_finds_a_real_face(portrait):
    dets = make_detector(DetectParams())(portrait)
    assert len(dets) == 1
    l, t, r, b = dets[0].box
    assert 60 < r - l < 130 and 0 <= l < r <= portrait.shape[1]
