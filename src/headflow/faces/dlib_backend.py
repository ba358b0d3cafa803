"""dlib's HOG face detector and 68-point shape predictor (the offline default backend).

Weights come from the `face-recognition-models` wheel, so nothing is downloaded.
"""

from __future__ import annotations

import threading
import warnings

import numpy as np

# dlib's detector and predictor objects are not safe to share between threads (Prefect's default
# task runner uses threads): one instance per thread.
_local = threading.local()


def hog_detector():
    if not hasattr(_local, "detector"):
        import dlib

        _local.detector = dlib.get_frontal_face_detector()
    return _local.detector


def shape_predictor():
    if not hasattr(_local, "predictor"):
        import dlib

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # face_recognition_models imports the deprecated pkg_resources
            import face_recognition_models

        _local.predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    return _local.predictor


def detect_faces(image: np.ndarray, upsample: int = 0) -> list[tuple[float, float, float, float, float]]:
    """HOG detections as (left, top, right, bottom, score), best first. `image`: RGB or gray uint8."""
    dets, scores, _ = hog_detector().run(image, upsample, 0.0)
    boxes = [(d.left(), d.top(), d.right(), d.bottom(), float(s)) for d, s in zip(dets, scores)]
    return sorted(boxes, key=lambda b: -b[4])


def landmarks68(image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """68 iBUG landmarks (68, 2) float32 in image pixels for the face inside `box` (l, t, r, b)."""
    import dlib

    rect = dlib.rectangle(int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))
    shape = shape_predictor()(image, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

