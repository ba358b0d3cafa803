"""Render animated portraits: piecewise-affine warping on a landmark triangulation plus a mouth interior.

The source photo is triangulated on its 68 landmarks, a ring of anchor points around the head
(moving rigidly with the head, so hair and neck follow it) and fixed points on the frame border
(so the background stays still). Each output pixel finds its triangle in a triangle-id raster and
samples the photo through that triangle's affine map: one `cv2.remap` per frame. Where the lips part
further than they do in the photo, a synthesised mouth interior (dark cavity, upper and lower teeth,
tongue) is blended in, since the photo has no pixels for it.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from headflow.demo.animation import FaceFrame, apply_pose, deform_mouth_and_eyes, landmark_depth
from headflow.demo.portraits import Portrait
from headflow.landmarks68 import INNER_LIP_LOWER, INNER_LIP_UPPER, INNER_LIPS


class PortraitAnimator:
    """Turns per-frame articulation and pose into ground-truth landmarks and rendered frames."""

    def __init__(self, portrait: Portrait, n_ring: int = 24, border_margin: float = 10.0):
        self.portrait = portrait
        self.size = portrait.image.shape[0]
        lm = portrait.landmarks.astype(np.float64)
        self.frame = FaceFrame.from_landmarks(lm)
        self.face_xy = self.frame.to_face(lm)
        self.face_z = landmark_depth(self.face_xy)
        # Anchor ring around the head (face units): encloses the jaw even fully open.
        ang = np.linspace(0, 2 * np.pi, n_ring, endpoint=False)
        ring_xy = np.stack([1.55 * np.cos(ang), 0.45 + 1.6 * np.sin(ang)], 1)
        ring_img = self.frame.to_image(ring_xy)
        inside = np.all((ring_img > border_margin) & (ring_img < self.size - 1 - border_margin), axis=1)
        self.ring_xyz = np.column_stack([ring_xy[inside], np.full(inside.sum(), -0.2)])
        s = self.size - 1
        edge = np.linspace(0, s, 5)
        border = {(float(x), float(y)) for x in edge for y in (0.0, s)} | {(float(x), float(y)) for y in edge for x in (0.0, s)}
        self.border = np.array(sorted(border))
        src = np.vstack([lm, ring_img[inside], self.border])
        self.triangles = Delaunay(src).simplices.astype(np.int32)
        self.src_points = src
        self.base_gap = self._inner_gap(lm)
        self._grid = np.mgrid[0:self.size, 0:self.size].astype(np.float32)  # (2, H, W): y, x

    @staticmethod
    def _inner_gap(lm: np.ndarray) -> float:
        return float(np.mean(lm[INNER_LIP_LOWER, 1] - lm[INNER_LIP_UPPER, 1]))

    def landmarks(self, mouth: np.ndarray, blink: float, pose: np.ndarray,
                  lip_raise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Ground-truth landmarks (68, 2) and ring anchors (R, 2) in pixels for one frame.

        `mouth` is one (3,) row of `mouth_track`, `pose` one (6,) row of `head_pose_track`,
        `lip_raise` the style's lip-corner raise in IOD (see `deform_mouth_and_eyes`).
        """
        xy = deform_mouth_and_eyes(self.face_xy, *mouth, blink, lip_raise=lip_raise)
        pts = np.vstack([np.column_stack([xy, self.face_z]), self.ring_xyz])
        img = apply_pose(pts, pose, self.frame)
        return img[:68], img[68:]

    def render(self, landmarks: np.ndarray, ring: np.ndarray) -> np.ndarray:
        """The frame (H, W, 3) uint8 whose face has `landmarks` (68, 2)."""
        dst = np.vstack([landmarks, ring, self.border])
        if len(dst) != len(self.src_points):
            raise ValueError(f"expected {len(self.src_points) - len(self.border)} face+ring points, got {len(dst) - len(self.border)}")
        map_x, map_y = self._warp_maps(dst)
        frame = cv2.remap(self.portrait.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        gap = self._inner_gap(landmarks) - self.base_gap
        if gap > 0.5:
            self._paint_mouth(frame, landmarks, gap)
        return frame

    def _warp_maps(self, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        tri = self.triangles
        ids = np.full((self.size, self.size), -1, np.int32)
        d = dst[tri]                                                   # (K, 3, 2) target triangles
        for k in range(len(tri)):
            cv2.fillConvexPoly(ids, np.round(d[k] * 16).astype(np.int32), int(k), lineType=cv2.LINE_8, shift=4)
        # Affine target -> source per triangle: [x_s, y_s] = A @ [x_t, y_t, 1].
        ones = np.ones((len(tri), 3, 1))
        dh = np.concatenate([d, ones], 2)                              # (K, 3, 3)
        s = self.src_points[tri]                                       # (K, 3, 2)
        aff = np.linalg.solve(dh, s).transpose(0, 2, 1).astype(np.float32)  # (K, 2, 3)
        ids[ids < 0] = 0   # unreachable with border points at the corners; kept as a guard
        a = aff[ids]                                                   # (H, W, 2, 3)
        yy, xx = self._grid
        map_x = a[..., 0, 0] * xx + a[..., 0, 1] * yy + a[..., 0, 2]
        map_y = a[..., 1, 0] * xx + a[..., 1, 1] * yy + a[..., 1, 2]
        return map_x, map_y

    def _paint_mouth(self, frame: np.ndarray, lm: np.ndarray, gap: float) -> None:
        """Blend a mouth interior into the inner-lip polygon, opaque once the lips part by ~3 px."""
        x0, y0 = np.floor(lm[INNER_LIPS].min(0)).astype(int) - 3
        x1, y1 = np.ceil(lm[INNER_LIPS].max(0)).astype(int) + 4
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, self.size), min(y1, self.size)
        if x1 - x0 < 3 or y1 - y0 < 3:
            return
        ss = 4  # supersampling for anti-aliased edges
        off = np.array([x0, y0], np.float64)

        def poly(pts: np.ndarray) -> np.ndarray:
            return np.round((pts - off) * ss * 16).astype(np.int32)

        h, w = (y1 - y0) * ss, (x1 - x0) * ss
        mask = np.zeros((h, w), np.uint8)
        cv2.fillPoly(mask, [poly(lm[INNER_LIPS])], 255, cv2.LINE_AA, shift=4)
        colour = np.empty((h, w, 3), np.float32)
        # Cavity: dark red, darker towards the back (centre).
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy = w / 2, h / 2
        falloff = np.clip(1 - ((xx - cx) / (0.6 * w)) ** 2 - ((yy - cy) / (0.7 * h + 1)) ** 2, 0, 1)
        colour[:] = np.array([96, 40, 44], np.float32)
        colour *= (1 - 0.55 * falloff)[..., None]
        upper = lm[[60, 61, 62, 63, 64]]
        lower = lm[[64, 65, 66, 67, 60]]
        width = float(lm[64, 0] - lm[60, 0])
        unit = self.frame.unit
        # Tongue: a low ellipse at the bottom of the opening.
        tongue = np.zeros((h, w), np.uint8)
        tc = (lm[66] - off) * ss
        cv2.ellipse(tongue, (int(tc[0]), int(tc[1])), (max(int(0.3 * width * ss), 1), max(int(0.3 * gap * ss), 1)),
                    0, 180, 360, 255, -1, cv2.LINE_AA)
        colour = np.where(tongue[..., None] > 0, colour * 0.3 + np.array([150, 62, 70], np.float32) * 0.7, colour)
        # Teeth: bands under the upper inner lip and above the lower one, narrower than the mouth.
        profile = np.array([0.0, 0.8, 1.0, 0.8, 0.0])[:, None]   # teeth show most at the centre
        for lip, depth, sign, shade in ((upper, min(0.085 * unit, 0.45 * gap), 1.0, (222, 216, 200)),
                                        (lower, min(0.05 * unit, 0.22 * gap), -1.0, (190, 182, 168))):
            centre_x = lip[:, 0].mean()
            band = lip.copy()
            band[:, 0] = centre_x + 0.85 * (band[:, 0] - centre_x)
            edge = band + profile * np.array([0.0, sign * depth])
            teeth = np.zeros((h, w), np.uint8)
            cv2.fillPoly(teeth, [poly(np.vstack([band, edge[::-1]]))], 255, cv2.LINE_AA, shift=4)
            t = cv2.GaussianBlur(teeth, (0, 0), ss * 0.6).astype(np.float32)[..., None] / 255
            colour = colour * (1 - t) + np.array(shade, np.float32) * t
        colour = cv2.resize(colour, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(mask, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        alpha *= min(1.0, gap / 3.0)
        roi = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(roi * (1 - alpha[..., None]) + colour * alpha[..., None] + 0.5, 0, 255).astype(np.uint8)
