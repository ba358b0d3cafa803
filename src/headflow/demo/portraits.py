"""Real portrait photos that ship inside installed packages: the demo corpus identities.

Nothing is downloaded. Sources:
- scikit-image's `astronaut` (Eileen Collins, NASA, public domain),
- matplotlib's `grace_hopper.jpg` sample (public domain),
- insightface's sample images: `Tom_Hanks_54745.png` and the group photo `t1.jpg`, from which six
  people are cropped (`t1_1` ... `t1_6`, left to right).

Each portrait is cropped square around its face and resized so every identity has about the same
face size in the frame; its base 68 landmarks are dlib's, averaged over small shifts of the crop
(what the detector "sees" on average, which is the right reference for a ground truth that dlib is
later checked against).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from headflow.faces.dlib_backend import detect_faces, landmarks68
from headflow.landmarks68 import inter_ocular

# name -> (package, file inside the package's data, approximate face centre in the source image or None)
PORTRAITS: dict[str, tuple[str, str, tuple[int, int] | None]] = {
    "astronaut": ("skimage", "astronaut.png", None),
    "grace_hopper": ("matplotlib", "grace_hopper.jpg", None),
    "tom_hanks": ("insightface", "Tom_Hanks_54745.png", None),
    "t1_1": ("insightface", "t1.jpg", (117, 336)),
    "t1_2": ("insightface", "t1.jpg", (319, 223)),
    "t1_3": ("insightface", "t1.jpg", (515, 363)),
    "t1_4": ("insightface", "t1.jpg", (786, 417)),
    "t1_5": ("insightface", "t1.jpg", (935, 141)),
    "t1_6": ("insightface", "t1.jpg", (1166, 336)),
}


class PortraitError(RuntimeError):
    """A portrait cannot be loaded or has no usable face."""


def _package_file(package: str, name: str) -> Path:
    # find_spec does not import the package (insightface's __init__ pulls optional heavy deps).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise PortraitError(f"package '{package}' is not installed; it ships the portrait '{name}' "
                            "(run `make env`, which installs it)")
    root = Path(list(spec.submodule_search_locations)[0])
    candidates = {
        "skimage": [root / "data" / name],
        "matplotlib": [root / "mpl-data" / "sample_data" / name],
        "insightface": [root / "data" / "images" / name],
    }[package]
    for path in candidates:
        if path.exists():
            return path
    raise PortraitError(f"'{name}' not found inside the installed package '{package}' at {candidates[0]}")


def load_photo(name: str) -> np.ndarray:
    """The full source photo of portrait `name`, RGB uint8."""
    if name not in PORTRAITS:
        raise PortraitError(f"unknown portrait '{name}'; available: {', '.join(PORTRAITS)}")
    package, file, _ = PORTRAITS[name]
    # Pillow, not cv2.imread: once PyAV has decoded media in the process, OpenCV's bundled libpng
    # can fail to read PNGs (two libpng builds in one process), which made portraits flaky.
    from PIL import Image

    try:
        with Image.open(_package_file(package, file)) as im:
            return np.asarray(im.convert("RGB")).copy()
    except OSError as err:
        raise PortraitError(f"cannot decode {file} from {package}: {err}") from err


@dataclass(frozen=True)
class Portrait:
    """A portrait prepared for animation: square frame and its base landmarks."""

    name: str
    image: np.ndarray        # (S, S, 3) uint8 RGB
    landmarks: np.ndarray    # (68, 2) float32, pixels of `image`

    @property
    def inter_ocular(self) -> float:
        return float(inter_ocular(self.landmarks))


def _face_box(photo: np.ndarray, centre: tuple[int, int] | None) -> tuple[float, float, float, float]:
    faces = detect_faces(photo, upsample=1)
    if not faces:
        raise PortraitError("no face found by dlib HOG")
    if centre is None:
        return faces[0][:4]
    cx, cy = centre
    return min(faces, key=lambda b: ((b[0] + b[2]) / 2 - cx) ** 2 + ((b[1] + b[3]) / 2 - cy) ** 2)[:4]


@functools.lru_cache(maxsize=32)
def prepare_portrait(name: str, size: int = 384, face_fraction: float = 0.46) -> Portrait:
    """Crop portrait `name` to a `size` x `size` frame whose face box spans `face_fraction` of it.

    Raises:
        PortraitError: when dlib finds no face, or a second face is visible in the crop.
    """
    photo = load_photo(name)
    _, _, centre = PORTRAITS[name]
    left, top, right, bottom = _face_box(photo, centre)
    side = (right - left) / face_fraction
    cx, cy = (left + right) / 2, (top + bottom) / 2 + 0.08 * (bottom - top)
    scale = size / side
    # Similarity crop (pure scale + shift). Where the crop leaves the photo, edge pixels are
    # replicated: reflection would mirror extra faces into the frame.
    m = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]], np.float64)
    image = cv2.warpAffine(photo, m, (size, size), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REPLICATE)
    faces = detect_faces(image, upsample=0)
    if len(faces) != 1:
        raise PortraitError(f"portrait '{name}': expected exactly one face in the {size}px crop, found {len(faces)}")
    box = faces[0][:4]
    # Average dlib's landmarks over small shifts of the box: a steadier estimate of what it sees.
    w = box[2] - box[0]
    shifts = [(0, 0), (0.03, 0), (-0.03, 0), (0, 0.03), (0, -0.03)]
    marks = [landmarks68(image, (box[0] + dx * w, box[1] + dy * w, box[2] + dx * w, box[3] + dy * w))
             for dx, dy in shifts]
    return Portrait(name=name, image=image, landmarks=np.mean(marks, axis=0).astype(np.float32))
