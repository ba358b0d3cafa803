"""NMFC images (Head2Head / Head2HeadFS) and shaded previews of a fitted morphable model.

NMFC (normalised mean face coordinates): every pixel covered by the fitted mesh, rasterised in the
256x256 face crop with a z-buffer, gets the (x, y, z) coordinates of the model's MEAN face at that
surface point, normalised to [0, 1] per axis (`nmfc_colors`) and stored as uint8 RGB. The colour of
a point of the face does not depend on identity, expression or pose, so a generator conditioned on
NMFC sees where each part of the face is.

Pipeline for one clip (shapes in comments):
    projected = fit.project(model)                      # (T, V, 3) source pixels u, v + depth
    crop_xyz = to_crop(projected, crop_transforms)      # (T, V, 3) crop pixels + depth
    nmfc, mask = render_nmfc(model, crop_xyz)           # (T, 256, 256, 3) uint8, (T, 256, 256) bool
    write_nmfc(path, nmfc, mask)                        # lossless, deterministic bytes

The rasteriser itself is in `headflow.nmfc.raster` (numba, with a vectorised-numpy fallback
that gives identical results); conventions (pixel centres, fill rule, culling) are documented there.
Speed (`PYTHONPATH=src:. python bench/morph_render.py`, ICT face area, 18,461 triangles, 256x256,
140 frames, shared 2-core machine): numba 230-360 frames/s, ~300-450x a per-triangle Python loop and
~15-25x the vectorised-numpy fallback (14-16 frames/s). `render_shaded` (~35 frames/s, numpy vertex
normals) is meant for the few frames of a report picture.
"""

from __future__ import annotations

import numpy as np

from headflow.nmfc import raster
from headflow.morphable.model import MorphableModel
from headflow.nmfc.io import nmfc_preview, read_nmfc, write_nmfc

__all__ = ["face_triangles", "nmfc_colors", "to_crop", "rasterize", "render_nmfc", "render_shaded",
           "vertex_shading", "write_nmfc", "read_nmfc", "nmfc_preview", "LIGHT_DIR"]

LIGHT_DIR = (-0.3, 0.4, 1.0)
"""Direction towards the light for `render_shaded`, camera frame (x right, y up, z towards camera)."""
AMBIENT = 0.15
"""Grey level of surfaces facing away from the light in `render_shaded` (diffuse gets 1 - AMBIENT)."""


def _rendered_vertex_count(model: MorphableModel) -> int:
    n = model.meta.get("face_area_vertices")
    return model.n_vertices if n is None else int(min(int(n), model.n_vertices))


def face_triangles(model: MorphableModel) -> np.ndarray:
    """(F, 3) int32 triangles rendered for NMFC: those with all three vertices inside the face area
    `[0, model.meta["face_area_vertices"])` (ICT-FaceKit: 9409 vertices, ~18k triangles), else all."""
    tri = np.asarray(model.triangles, dtype=np.int32)
    n = model.meta.get("face_area_vertices")
    if n is None:
        return tri.copy()
    return np.ascontiguousarray(tri[(tri < int(n)).all(axis=1)])


def nmfc_colors(model: MorphableModel) -> np.ndarray:
    """(V, 3) float32 in [0, 1]: the mean face normalised per axis (x, y, z) over the rendered vertices.

    The range is taken over vertices `[0, face_area_vertices)` when the model sets that meta key
    (ICT), else over all vertices; vertices outside the face area are clipped to [0, 1]. An axis
    with no extent gets 0.5.
    """
    mean = np.asarray(model.mean, dtype=np.float64)
    ref = mean[:_rendered_vertex_count(model)]
    lo, hi = ref.min(axis=0), ref.max(axis=0)
    extent = hi - lo
    safe = np.where(extent > 0, extent, 1.0)
    col = np.where(extent > 0, (mean - lo) / safe, 0.5)
    return np.clip(col, 0.0, 1.0).astype(np.float32)


def to_crop(projected: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """Map projected vertices from source-frame pixels into crop pixels.

    Args:
        projected: (T, V, 3) source-frame u, v (pixels) and depth (`VideoFit.project`).
        transforms: (T, 2, 3) or (T, 6) source -> crop affines (the faces manifest's `crop_transform`
            column, OpenCV convention), or one (2, 3) / (6,) affine for every frame.

    Returns:
        (T, V, 3) float32: crop x, y and depth * sqrt(|det A|) (depth stays in crop pixel units).
    """
    p = np.asarray(projected)
    if p.ndim != 3 or p.shape[2] != 3:
        raise ValueError(f"projected must be (T, V, 3), got {p.shape}")
    p = p.astype(np.float64, copy=False)
    M = np.asarray(transforms, dtype=np.float64)
    if M.shape in ((2, 3), (6,)):
        M = np.broadcast_to(M.reshape(1, 2, 3), (p.shape[0], 2, 3))
    M = M.reshape(-1, 2, 3) if M.ndim == 2 and M.shape[1] == 6 else M
    if M.shape != (p.shape[0], 2, 3):
        raise ValueError(f"transforms must be (T, 2, 3) or (T, 6) with T = {p.shape[0]}, got "
                         f"{np.asarray(transforms).shape}")
    M = M[:, :, :, None]                                           # (T, 2, 3, 1): broadcast over V
    u, v = p[..., 0], p[..., 1]
    out = np.empty(p.shape, np.float32)
    out[..., 0] = M[:, 0, 0] * u + M[:, 0, 1] * v + M[:, 0, 2]
    out[..., 1] = M[:, 1, 0] * u + M[:, 1, 1] * v + M[:, 1, 2]
    det = M[:, 0, 0] * M[:, 1, 1] - M[:, 0, 1] * M[:, 1, 0]
    out[..., 2] = p[..., 2] * np.sqrt(np.abs(det))
    return out


def rasterize(xyz: np.ndarray, triangles: np.ndarray, height: int, width: int, cull: str = "back",
              backend: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Rasterise one frame with a z-buffer.

    Args:
        xyz: (V, 3) pixel x, y (integer = pixel centre, y down) and depth (larger = closer).
        triangles: (F, 3) vertex indices, counter-clockwise seen from the front in model space.
        cull: "back" (drop triangles facing away: positive signed area in image coordinates),
            "none" or "front".
        backend: "auto" (numba when importable), "numba" or "numpy" (identical results).

    Returns:
        tri_id (H, W) int32 (-1 = empty) and bary (H, W, 3) float32, the barycentric weights of the
        triangle's three vertices (in the order of `triangles`) at each pixel centre.
    """
    xyz = np.asarray(xyz)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"xyz must be (V, 3), got {xyz.shape}")
    tri = _check_triangles(triangles, len(xyz))
    return raster.rasterize_frame(xyz, tri, int(height), int(width), raster.cull_code(cull), backend)


def render_nmfc(model: MorphableModel, projected_crop: np.ndarray, size: int = 256,
                triangles: np.ndarray | None = None, backend: str = "auto",
                cull: str = "back") -> tuple[np.ndarray, np.ndarray]:
    """NMFC images of a clip.

    Args:
        model: the fitted model (its mean face gives the colours).
        projected_crop: (T, V, 3) crop pixels + depth (`to_crop`); frames with NaN vertices render empty.
        size: crop side in pixels.
        triangles: the triangles to draw; None: `face_triangles(model)`.

    Returns:
        nmfc (T, size, size, 3) uint8 (colour = round(255 * interpolated `nmfc_colors`), background
        0) and mask (T, size, size) bool (pixels covered by the mesh).
    """
    xyz = _check_projected(projected_crop, model)
    tri = face_triangles(model) if triangles is None else _check_triangles(triangles, model.n_vertices)
    colors = nmfc_colors(model)[None]
    return raster.render_attributes(xyz, tri, size, size, colors, raster.cull_code(cull), backend)


def vertex_shading(projected: np.ndarray, triangles: np.ndarray, light=LIGHT_DIR,
                   ambient: float = AMBIENT) -> np.ndarray:
    """(T, V) float32 Lambertian grey level per vertex from the normals of the projected mesh.

    Normals are area-weighted sums of the face normals in the right-handed camera-like frame
    (x, -y, depth); vertices of no triangle get the ambient level.
    """
    projected = np.asarray(projected)
    tri = np.asarray(triangles, dtype=np.int64)
    T, V_all = projected.shape[0], projected.shape[1]
    V = int(tri.max()) + 1 if len(tri) else 0                      # only the vertices the triangles use
    p = np.asarray(projected[:, :V], dtype=np.float64)
    q = np.stack([p[..., 0], -p[..., 1], p[..., 2]], axis=-1)      # (T, V, 3)
    a, b, c = q[:, tri[:, 0]], q[:, tri[:, 1]], q[:, tri[:, 2]]
    fn = np.cross(b - a, c - a)                                    # (T, F, 3), towards the camera when front-facing
    vn = np.zeros((T, V, 3))
    for k in range(3):
        idx = (np.arange(T)[:, None] * V + tri[None, :, k]).ravel()
        for d in range(3):
            vn[..., d] += np.bincount(idx, weights=fn[..., d].ravel(), minlength=T * V).reshape(T, V)
    with np.errstate(invalid="ignore", divide="ignore"):
        vn /= np.linalg.norm(vn, axis=-1, keepdims=True)
    L = np.asarray(light, dtype=np.float64)
    L = L / np.linalg.norm(L)
    lam = np.nan_to_num(np.clip(vn @ L, 0.0, 1.0))
    out = np.full((T, V_all), ambient, np.float32)
    out[:, :V] = ambient + (1.0 - ambient) * lam
    return out


def render_shaded(model: MorphableModel, projected_crop: np.ndarray, size: int = 256,
                  triangles: np.ndarray | None = None, backend: str = "auto") -> np.ndarray:
    """(T, size, size) uint8 Lambertian grey preview (Gouraud-interpolated vertex shading), for reports."""
    xyz = _check_projected(projected_crop, model)
    tri = face_triangles(model) if triangles is None else _check_triangles(triangles, model.n_vertices)
    shade = vertex_shading(xyz, tri)[..., None]                    # (T, V, 1)
    out, _ = raster.render_attributes(xyz, tri, size, size, shade, raster.CULL_BACK, backend)
    return out[..., 0]


def _check_projected(projected: np.ndarray, model: MorphableModel) -> np.ndarray:
    xyz = np.asarray(projected)
    if xyz.ndim != 3 or xyz.shape[2] != 3 or xyz.shape[1] != model.n_vertices:
        raise ValueError(f"projected_crop must be (T, {model.n_vertices}, 3) for model {model.name!r}, "
                         f"got {xyz.shape}")
    return xyz


def _check_triangles(triangles: np.ndarray, n_vertices: int) -> np.ndarray:
    tri = np.asarray(triangles)
    if tri.ndim != 2 or tri.shape[1] != 3:
        raise ValueError(f"triangles must be (F, 3), got {tri.shape}")
    if len(tri) and (tri.min() < 0 or tri.max() >= n_vertices):
        raise ValueError(f"triangle indices [{tri.min()}, {tri.max()}] outside [0, {n_vertices})")
    return np.ascontiguousarray(tri, dtype=np.int32)
