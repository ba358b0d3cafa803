"""NMFC rasteriser: coverage, fill rule, culling, z-buffer, colours, backends, crop mapping, files."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from headflow.faces import crops
from headflow.nmfc.render import (face_triangles, nmfc_colors, nmfc_preview, rasterize, read_nmfc, render_nmfc,
                                render_shaded, to_crop, write_nmfc)
from headflow.nmfc import raster
from headflow.rotations import euler_to_matrix
from headflow.morphable.builtin import builtin_model
from headflow.nmfc.render import AMBIENT, LIGHT_DIR

BACKENDS = ["numba", "numpy"] if raster.HAVE_NUMBA else ["numpy"]


def rotation(yaw, pitch, roll):
    """R = Rz(roll) @ Rx(pitch) @ Ry(yaw), degrees (the interface's convention)."""
    return euler_to_matrix([yaw, pitch, roll])


def project(X, R, s, tx, ty):
    """Scaled orthographic camera: u = s Px + tx, v = -s Py + ty, depth = s Pz."""
    P = np.asarray(X, np.float64) @ R.T
    return np.stack([s * P[:, 0] + tx, -s * P[:, 1] + ty, s * P[:, 2]], axis=1)


def reference_pixel(xyz, tri, colors, px, py):
    """Independent brute-force render of one pixel centre: float barycentrics over all triangles."""
    a, b, c = xyz[tri[:, 0]], xyz[tri[:, 1]], xyz[tri[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    front = area < 0
    def edge(p, q):
        return (q[:, 0] - p[:, 0]) * (py - p[:, 1]) - (q[:, 1] - p[:, 1]) * (px - p[:, 0])
    w = np.stack([edge(b, c), edge(c, a), edge(a, b)], axis=1) / area[:, None]
    inside = front & (w > -1e-9).all(axis=1)
    if not inside.any():
        return None, None
    depth = (w * np.stack([a[:, 2], b[:, 2], c[:, 2]], axis=1)).sum(axis=1)
    f = np.flatnonzero(inside)[np.argmax(depth[inside])]
    return f, np.round(255 * (w[f] @ colors[tri[f]])).astype(int)


# -- analytic coverage -------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
def test_square_of_two_triangles_covers_exactly_its_pixels(backend):
    # Image corners A(10,20) B(30,20) C(30,50) D(10,50). Facing the camera = negative signed area in
    # image coordinates (counter-clockwise from the front in y-up model space, y flipped by the camera).
    xyz = np.array([[10, 20, 1], [30, 20, 1], [30, 50, 1], [10, 50, 1]], float)
    tri = np.array([[0, 3, 2], [0, 2, 1]])
    tri_id, bary = rasterize(xyz, tri, 64, 64, backend=backend)
    # top-left rule: centres on the left (x=10) and top (y=20) edges in, right and bottom edges out
    expected = np.zeros((64, 64), bool)
    expected[20:50, 10:30] = True
    np.testing.assert_array_equal(tri_id >= 0, expected)
    assert (tri_id == 0).sum() + (tri_id == 1).sum() == 600
    np.testing.assert_allclose(bary[expected].sum(axis=1), 1.0, atol=1e-6)
    # the pixel at vertex A belongs to a triangle whose weight on A is 1
    f = tri_id[20, 10]
    assert bary[20, 10, list(tri[f]).index(0)] == pytest.approx(1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_back_faces_are_culled(backend):
    xyz = np.array([[10, 20, 1], [30, 20, 1], [30, 50, 1], [10, 50, 1]], float)
    back = np.array([[0, 2, 3], [0, 1, 2]])                 # reversed winding: facing away
    assert (rasterize(xyz, back, 64, 64, backend=backend)[0] < 0).all()
    assert (rasterize(xyz, back, 64, 64, cull="none", backend=backend)[0] >= 0).sum() == 600
    assert (rasterize(xyz, back, 64, 64, cull="front", backend=backend)[0] >= 0).sum() == 600
    front = np.array([[0, 3, 2], [0, 2, 1]])
    assert (rasterize(xyz, front, 64, 64, cull="front", backend=backend)[0] < 0).all()


def test_builtin_and_ict_triangles_face_the_camera_at_a_frontal_pose(shared_dir):
    # The culling convention relies on the models' winding: counter-clockwise from +z in model space.
    from headflow.morphable.ict import load_ict_npz

    model_path = shared_dir / "models" / "ict_facekit" / "ict_face_model_light_full.npz"
    models = [builtin_model()] + ([load_ict_npz(model_path, face_only=True)] if model_path.is_file() else [])
    for model in models:
        xyz = project(model.mean, np.eye(3), 10.0, 128, 128)
        tri = face_triangles(model)
        a, b, c = xyz[tri[:, 0]], xyz[tri[:, 1]], xyz[tri[:, 2]]
        area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
        assert (area < 0).mean() > 0.8, model.name       # the skin faces the camera; ICT: ~85%


@pytest.mark.parametrize("backend", BACKENDS)
def test_zbuffer_keeps_the_closest_surface_in_any_draw_order(backend):
    near = [[5, 5, 10], [5, 40, 10], [40, 40, 10]]            # depth 10 (closer)
    far = [[0, 0, -3], [0, 60, -3], [60, 60, -3]]             # depth -3, covers the near one
    xyz = np.array(near + far, float)
    for tri in (np.array([[0, 1, 2], [3, 4, 5]]), np.array([[3, 4, 5], [0, 1, 2]])):
        tri_id, _ = rasterize(xyz, tri, 64, 64, backend=backend)
        near_id = int(np.flatnonzero(tri[:, 0] == 0)[0])
        assert tri_id[35, 10] == near_id                       # inside both: the near one
        assert tri_id[55, 5] == 1 - near_id                    # only the far one


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("grid", ["integer", "jittered"])
def test_dense_mesh_has_no_holes_and_no_double_draws(backend, grid):
    # 30x30 quads. "integer": 2 px quads on integer coordinates, so thousands of pixel centres lie
    # exactly on shared edges and vertices (the fill rule decides them); "jittered": interior
    # vertices moved at random, rotated and scaled. Both outlines are convex parallelograms.
    rng = np.random.default_rng(3)
    n = 31
    gx, gy = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float))
    jitter = rng.uniform(-0.3, 0.3, (n, n, 2)) if grid == "jittered" else np.zeros((n, n, 2))
    jitter[[0, -1], :] = 0
    jitter[:, [0, -1]] = 0
    pts = np.stack([gx, gy], -1) + jitter
    if grid == "jittered":
        R, shift = np.array([[np.cos(0.4), -np.sin(0.4)], [np.sin(0.4), np.cos(0.4)]]) * 1.7, [40.3, 8.7]
    else:
        R, shift = np.eye(2) * 2.0, [10.0, 7.0]
    uv = pts.reshape(-1, 2) @ R.T + shift
    xyz = np.column_stack([uv, np.zeros(len(uv))])
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()
    tri = np.concatenate([np.stack([a, c, b], 1), np.stack([a, d, c], 1)])   # all facing the camera
    H = W = 96
    count = np.zeros((H, W), int)
    for f in range(len(tri)):
        count += rasterize(xyz, tri[f:f + 1], H, W, backend=backend)[0] >= 0
    assert count.max() == 1
    # every pixel centre strictly inside the outline is covered, none strictly outside
    corners = np.array([[0, 0], [n - 1, 0], [n - 1, n - 1], [0, n - 1]], float) @ R.T + shift
    yy, xx = np.mgrid[:H, :W]
    sides = []
    for p, q in zip(corners, np.roll(corners, -1, axis=0)):
        e = (q[0] - p[0]) * (yy - p[1]) - (q[1] - p[1]) * (xx - p[0])
        sides.append(e / np.hypot(*(q - p)))
    sides = np.stack(sides)
    inside, outside = (sides > 1e-6).all(0), (sides < -1e-6).any(0)
    assert inside.sum() > 2000
    assert (count[inside] == 1).all() and (count[outside] == 0).all()
    full, _ = rasterize(xyz, tri, H, W, backend=backend)
    np.testing.assert_array_equal(full >= 0, count == 1)


# -- NMFC colours on a real mesh -----------------------------------------------------------------
def test_nmfc_colors_normalise_the_mean_face_per_axis():
    model = builtin_model()
    col = nmfc_colors(model)
    assert col.shape == (model.n_vertices, 3) and col.dtype == np.float32
    np.testing.assert_allclose(col.min(0), 0.0)
    np.testing.assert_allclose(col.max(0), 1.0)
    i = np.argmax(model.mean[:, 2])                       # the nose tip is the closest point: z = 1
    assert col[i, 2] == pytest.approx(1.0)
    assert len(face_triangles(model)) == len(model.triangles)


@pytest.mark.parametrize("backend", BACKENDS)
def test_frontal_pixel_under_each_vertex_has_its_colour(backend):
    model = builtin_model()
    # one grid step (0.19 cm) = one pixel, grid vertices land on pixel centres
    s = 1 / 0.19
    xyz = project(model.mean, np.eye(3), s, 24 - model.mean[:, 0].min() * s, 120 - 10.0 * s)   # u = 24 + i, v = 120 - j
    assert np.abs(xyz[:, :2] - np.round(xyz[:, :2])).max() < 1e-4
    nmfc, mask = render_nmfc(model, xyz[None], size=128, backend=backend)
    col = np.round(255 * nmfc_colors(model)).astype(int)
    u, v = np.round(xyz[:, 0]).astype(int), np.round(xyz[:, 1]).astype(int)
    ok = (u >= 0) & (u < 128) & (v >= 0) & (v < 128)
    covered = ok & mask[0, v.clip(0, 127), u.clip(0, 127)]
    assert covered.sum() > 0.95 * ok.sum() > 1000        # only right / bottom outline vertices are out
    diff = np.abs(nmfc[0, v[covered], u[covered]].astype(int) - col[covered])
    assert diff.max() <= 1


@pytest.mark.parametrize("pose", [(0, 0, 0), (28, 12, -8), (-35, -15, 20)])
def test_rotated_pose_matches_a_brute_force_reference(pose):
    model = builtin_model()
    xyz = project(model.mean, rotation(*pose), 6.0, 64.3, 60.8)
    tri, col = face_triangles(model), nmfc_colors(model)
    tri_id, _ = rasterize(xyz, tri, 128, 128)
    nmfc, mask = render_nmfc(model, xyz[None], size=128)
    np.testing.assert_array_equal(mask[0], tri_id >= 0)
    rng = np.random.default_rng(0)
    ys, xs = np.nonzero(np.ones((128, 128), bool))
    pick = rng.choice(len(ys), 300, replace=False)
    checked = 0
    for py, px in zip(ys[pick], xs[pick]):
        f, ref = reference_pixel(xyz, tri, col, px, py)
        if f is None:
            # uncovered in the reference: only pixel centres within snapping distance of an outline differ
            assert not mask[0, py, px] or reference_pixel(xyz, tri, col, px + 0.01, py + 0.01)[0] is not None \
                or reference_pixel(xyz, tri, col, px - 0.01, py - 0.01)[0] is not None
            continue
        checked += 1
        assert mask[0, py, px]
        assert np.abs(nmfc[0, py, px].astype(int) - ref).max() <= 1, (pose, px, py)
    assert checked > 60


def test_hidden_side_of_a_turned_head_does_not_show_through():
    # Turned far enough, the nose hides part of the far cheek: there the nose (high z colour) wins.
    model = builtin_model()
    xyz = project(model.mean, rotation(60, 0, 0), 6.0, 64, 64)
    nmfc, mask = render_nmfc(model, xyz[None], size=128)
    tip = np.argmax(model.mean[:, 2])
    u, v = np.round(xyz[tip, :2]).astype(int)
    assert nmfc[0, v, u, 2] >= 250                       # the nose tip, not the cheek behind it
    # seen from behind, the open face mask is all back faces: culled, nothing drawn
    tri = face_triangles(model)
    behind = project(model.mean, rotation(180, 0, 0), 6.0, 64, 64)
    assert not render_nmfc(model, behind[None], size=128)[1].any()
    assert (rasterize(behind, tri, 128, 128, cull="none")[0] >= 0).sum() > 0.9 * mask.sum()


def test_numba_and_numpy_paths_agree_exactly():
    if not raster.HAVE_NUMBA:
        pytest.skip("numba not installed")
    model = builtin_model()
    X = np.stack([project(model.mean, rotation(*p), 5.5, 64.2, 63.9) for p in [(0, 0, 0), (30, -10, 5), (-50, 20, 0)]])
    X[2, :50] = np.nan                                   # some invalid vertices hide their triangles
    X = X.astype(np.float32)                             # as `to_crop` returns
    a = render_nmfc(model, X, size=128, backend="numba")
    b = render_nmfc(model, X, size=128, backend="numpy")
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    for t in range(3):
        ra, rb = rasterize(X[t], face_triangles(model), 128, 128, backend="numba"), \
            rasterize(X[t], face_triangles(model), 128, 128, backend="numpy")
        np.testing.assert_array_equal(ra[0], rb[0])
        np.testing.assert_array_equal(ra[1], rb[1])
    # parallel batch == frame by frame, and repeatable
    for t in range(3):
        np.testing.assert_array_equal(render_nmfc(model, X[t:t + 1], size=128)[0][0], a[0][t])
    np.testing.assert_array_equal(render_nmfc(model, X, size=128)[0], a[0])


def test_numba_and_numpy_paths_agree_on_the_ict_face_area(shared_dir):
    if not raster.HAVE_NUMBA:
        pytest.skip("numba not installed")
    from headflow.morphable.ict import load_ict_npz

    path = shared_dir / "models" / "ict_facekit" / "ict_face_model_light_full.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    model = load_ict_npz(path)
    assert 18000 < len(face_triangles(model)) < 19000
    X = np.stack([project(model.mean, rotation(*p), 8.0, 127.6, 131.2) for p in [(5, 3, 1), (-40, 10, -12)]])
    a = render_nmfc(model, X.astype(np.float32), backend="numba")
    b = render_nmfc(model, X.astype(np.float32), backend="numpy")
    assert a[1].mean() > 0.2
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])


def test_invalid_frames_render_empty_and_bad_input_is_named():
    model = builtin_model()
    X = np.full((2, model.n_vertices, 3), np.nan)
    X[1] = project(model.mean, np.eye(3), 5.0, 64, 64)
    nmfc, mask = render_nmfc(model, X, size=128)
    assert not mask[0].any() and not nmfc[0].any() and mask[1].sum() > 3000
    with pytest.raises(ValueError, match="projected_crop"):
        render_nmfc(model, X[:, :10], size=128)
    with pytest.raises(ValueError, match="cull"):
        rasterize(X[1], model.triangles, 8, 8, cull="sideways")


def test_shaded_render_of_a_plane_is_uniform_lambert():
    xyz = np.array([[10, 20, 0], [30, 20, 0], [30, 50, 0], [10, 50, 0]], float)
    from headflow.morphable.model import MorphableModel
    plane = MorphableModel(name="plane", mean=xyz * [1, -1, 1], id_basis=np.zeros((0, 4, 3)),
                           exp_basis=np.zeros((0, 4, 3)), triangles=[[0, 3, 2], [0, 2, 1]],
                           landmarks68=np.zeros(68, int))
    shaded = render_shaded(plane, xyz[None], size=64)
    L = np.asarray(LIGHT_DIR) / np.linalg.norm(LIGHT_DIR)
    expected = round(255 * (AMBIENT + (1 - AMBIENT) * L[2]))
    assert set(np.unique(shaded[0, 20:50, 10:30])) <= {expected - 1, expected, expected + 1}
    assert shaded[0].astype(bool).sum() == 600


# -- crops ---------------------------------------------------------------------------------------
def test_to_crop_equals_the_affine_applied_to_the_vertices():
    model = builtin_model()
    T = 3
    X = np.stack([project(model.mean, rotation(10 * t, 5, 0), 20.0, 300 + t, 260) for t in range(T)])
    lm2d = X[:, model.landmarks68, :2]
    M = crops.align_transforms(lm2d, size=256)
    out = to_crop(X, M)
    for t in range(T):
        np.testing.assert_allclose(out[t, :, :2], crops.apply(M[t], X[t, :, :2]), atol=1e-3)
        scale = np.sqrt(abs(np.linalg.det(M[t, :, :2])))
        np.testing.assert_allclose(out[t, :, 2], X[t, :, 2] * scale, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(to_crop(X, M.reshape(T, 6)), out)
    # the face lands in the crop, and its NMFC render matches the warped source-frame render
    nmfc, mask = render_nmfc(model, out, size=256)
    assert 0.15 < mask.mean() < 0.8
    src, src_mask = render_nmfc(model, X[:1], size=600)
    import cv2
    warped = cv2.warpAffine(src_mask[0].astype(np.uint8), M[0], (256, 256), flags=cv2.INTER_NEAREST)
    iou = (warped.astype(bool) & mask[0]).sum() / (warped.astype(bool) | mask[0]).sum()
    assert iou > 0.97
    with pytest.raises(ValueError, match="transforms"):
        to_crop(X, M[:2])


# -- files ---------------------------------------------------------------------------------------
def test_write_read_round_trip_is_exact_and_deterministic(tmp_path):
    model = builtin_model()
    X = np.stack([project(model.mean, rotation(5 * t, 0, 0), 6.0, 64, 64) for t in range(5)])
    nmfc, mask = render_nmfc(model, X, size=128)
    mask[0, 0, 0] = True                                 # a covered black pixel stays covered
    write_nmfc(tmp_path / "a.nmfc.zip", nmfc, mask)
    write_nmfc(tmp_path / "b.nmfc.zip", nmfc, mask)
    assert (tmp_path / "a.nmfc.zip").read_bytes() == (tmp_path / "b.nmfc.zip").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.nmfc.zip", "b.nmfc.zip"]   # no temp files left
    got, got_mask = read_nmfc(tmp_path / "a.nmfc.zip")
    np.testing.assert_array_equal(got, nmfc)
    np.testing.assert_array_equal(got_mask, mask)
    sub, sub_mask = read_nmfc(tmp_path / "a.nmfc.zip", frames=[3, 1])
    np.testing.assert_array_equal(sub, nmfc[[3, 1]])
    np.testing.assert_array_equal(sub_mask, mask[[3, 1]])
    assert (tmp_path / "a.nmfc.zip").stat().st_size < nmfc.nbytes / 5
    empty = tmp_path / "empty.nmfc.zip"
    write_nmfc(empty, nmfc[:0], mask[:0])
    assert read_nmfc(empty)[0].shape == (0, 128, 128, 3)
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as zf:
        zf.writestr("x.txt", "x")
    with pytest.raises(ValueError, match="not an NMFC file"):
        read_nmfc(tmp_path / "bad.zip")
    with pytest.raises(ValueError, match="uint8"):
        write_nmfc(tmp_path / "c.nmfc.zip", nmfc.astype(np.float32), mask)


def test_preview_picture(tmp_path):
    from PIL import Image

    model = builtin_model()
    X = np.stack([project(model.mean, rotation(8 * t, 0, 0), 6.0, 64, 64) for t in range(6)])
    nmfc, mask = render_nmfc(model, X, size=128)
    shaded = render_shaded(model, X, size=128)
    frames = np.full((6, 200, 200, 3), 90, np.uint8)
    out = nmfc_preview(frames, nmfc, shaded, tmp_path / "p.png", n=4)
    img = np.asarray(Image.open(out))   # Pillow: cv2's libpng may fail after PyAV ran in the process
    assert img.shape[0] > 4 * 128 and img.shape[1] > 4 * 128
