"""Face detector backends behind one interface: an RGB frame in, boxes in source pixels out.

The default backend (dlib HOG) runs offline from wheels. Optional backends need weights: building
one first checks its files through the offline weight policy (`headflow.models.require`), so a
missing file fails with a message naming the file, its URL and the destination folder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from headflow import models
from headflow.faces.params import DetectParams


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]   # left, top, right, bottom in source pixels
    score: float


# An RGB uint8 frame (H, W, 3) -> detections, best first.
Detector = Callable[[np.ndarray], list[Detection]]

BACKEND_WEIGHTS: dict[str, tuple[str, ...]] = {
    "dlib_hog": (),
    "insightface": ("insightface_buffalo_l",),
    "face_alignment": ("s3fd",),
    "mediapipe": ("mediapipe_face_landmarker",),
}


def _downscale_gray(frame: np.ndarray, scale: float) -> np.ndarray:
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) if frame.ndim == 3 else frame
    if scale == 1.0:
        return gray
    return cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)


class DlibHogDetector:
    """dlib's HOG detector on the grey frame downscaled by an adaptive factor.

    HOG scans an 80-px window over an image pyramid: a face smaller than the window at the
    detection scale is reported with the window's box, too large and too low, which drags the
    landmarks' jaw down. So the factor starts at `params.scale` and rises (up to 1) until the faces
    found are at least `params.min_detect_px` at the detection scale; it is kept for later frames
    (one instance per clip). When nothing is found and `params.full_res_fallback`, it retries at
    full resolution, then with one upsampling step, and keeps the scale that found the face.
    """

    def __init__(self, params: DetectParams):
        from headflow.faces.dlib_backend import detect_faces

        self.params = params
        self.scale = params.scale
        self._detect = detect_faces

    def _run(self, frame: np.ndarray, scale: float, upsample: int) -> list[Detection]:
        k = 1.0 / scale
        return [Detection((l * k, t * k, r * k, b * k), s)
                for l, t, r, b, s in self._detect(_downscale_gray(frame, scale), upsample)
                if s >= self.params.min_score]

    def __call__(self, frame: np.ndarray) -> list[Detection]:
        dets = self._run(frame, self.scale, self.params.upsample)
        if not dets and self.params.full_res_fallback:
            # Nothing at the detection scale: the face may be too small for it. Full resolution,
            # then one pyramid upsampling (faces down to ~40 px); costly, so only when needed.
            if self.scale < 1:
                dets = self._run(frame, 1.0, self.params.upsample)
            if not dets and self.params.upsample < 1:
                dets = self._run(frame, 1.0, 1)
            if dets:
                self.scale = 1.0
        if dets:
            # HOG's boxes jump by ~20% between pyramid levels, so the scale only moves on clear
            # evidence (hysteresis): up when the face is well under `min_detect_px` at this scale,
            # down when it is more than twice that (e.g. after a full-resolution fallback).
            smallest = min(np.sqrt((d.box[2] - d.box[0]) * (d.box[3] - d.box[1])) for d in dets)
            at_scale = smallest * self.scale
            wanted = float(min(1.0, max(self.params.scale, self.params.min_detect_px / smallest)))
            if at_scale < 0.85 * self.params.min_detect_px and wanted > self.scale:
                self.scale = wanted
                dets = self._run(frame, self.scale, self.params.upsample) or dets
            elif at_scale > 2 * self.params.min_detect_px and wanted < self.scale:
                self.scale = wanted
        return dets


def dlib_hog_detector(params: DetectParams) -> Detector:
    return DlibHogDetector(params)


def _insightface_detector(params: DetectParams) -> Detector:
    path = models.require("insightface_buffalo_l")
    try:
        from insightface.app import FaceAnalysis
    except ImportError as err:
        raise ImportError(f"backend 'insightface' needs insightface and onnxruntime ({err}); "
                          "pip install --no-deps insightface onnxruntime") from err
    # FaceAnalysis reads <root>/models/buffalo_l/*.onnx and downloads when they are absent: unpack
    # the registered zip there ourselves so it never reaches for the network.
    root = path.parent / "insightface"
    pack = root / "models" / "buffalo_l"
    if not list(pack.glob("det_*.onnx")):
        import zipfile

        pack.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path) as z:
            for member in z.namelist():
                if member.endswith(".onnx"):
                    (pack / Path(member).name).write_bytes(z.read(member))
    app = FaceAnalysis(name="buffalo_l", root=str(root), allowed_modules=["detection"])
    app.prepare(ctx_id=-1, det_size=(640, 640))

    def detect(frame: np.ndarray) -> list[Detection]:
        faces = app.get(_downscale(frame, params)[:, :, ::-1])  # insightface wants BGR
        return _rescaled([(*f.bbox[:4], f.det_score) for f in faces], params)

    return detect


def _downscale(frame: np.ndarray, params: DetectParams) -> np.ndarray:
    return cv2.resize(frame, None, fx=params.scale, fy=params.scale) if params.scale != 1 else frame


def _rescaled(boxes, params: DetectParams) -> list[Detection]:
    """(l, t, r, b, score) found on the downscaled frame -> source-pixel detections, best first."""
    k = 1.0 / params.scale
    out = [Detection(tuple(float(v) * k for v in b[:4]), float(b[4])) for b in boxes]
    return sorted([d for d in out if d.score >= params.min_score], key=lambda d: -d.score)


def _face_alignment_detector(params: DetectParams) -> Detector:
    path = models.require("s3fd")
    try:
        from face_alignment.detection.sfd.sfd_detector import SFDDetector
    except ImportError as err:
        raise ImportError(f"backend 'face_alignment' needs face-alignment and torch ({err}); "
                          "pip install --no-deps face-alignment") from err
    det = SFDDetector(device="cpu", path_to_detector=str(path))

    def detect(frame: np.ndarray) -> list[Detection]:
        return _rescaled(det.detect_from_image(_downscale(frame, params)[:, :, ::-1].copy()), params)

    return detect


def _mediapipe_detector(params: DetectParams) -> Detector:
    path = models.require("mediapipe_face_landmarker")
    try:
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision
    except ImportError as err:
        raise ImportError(f"backend 'mediapipe' needs mediapipe==0.10.21 ({err}); "
                          "pip install --no-deps mediapipe==0.10.21") from err
    lm = vision.FaceLandmarker.create_from_options(vision.FaceLandmarkerOptions(
        base_options=BaseOptions(model_asset_path=str(path)), num_faces=4))

    def detect(frame: np.ndarray) -> list[Detection]:
        h, w = frame.shape[:2]
        res = lm.detect(mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(frame)))
        out = []
        for pts in res.face_landmarks:
            xy = np.array([(p.x * w, p.y * h) for p in pts])
            (l, t), (r, b) = xy.min(0), xy.max(0)
            out.append(Detection((float(l), float(t), float(r), float(b)), 1.0))
        return out

    return detect


BACKENDS: dict[str, Callable[[DetectParams], Detector]] = {
    "dlib_hog": dlib_hog_detector,
    "insightface": _insightface_detector,
    "face_alignment": _face_alignment_detector,
    "mediapipe": _mediapipe_detector,
}


def make_detector(params: DetectParams) -> Detector:
    """The detector of `params.backend`; raises `models.MissingWeights` when its weights are absent."""
    if params.backend not in BACKENDS:
        raise ValueError(f"faces.detect.backend '{params.backend}' is unknown; choose one of {sorted(BACKENDS)}")
    for name in BACKEND_WEIGHTS[params.backend]:
        models.require(name)   # fail before importing anything heavy
    return BACKENDS[params.backend](params)
