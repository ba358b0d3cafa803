"""Pure metric functions of the evaluation stage; each docstring names the reference it follows.

Imports no generator and no stage (DESIGN, import rules): numpy, scipy, OpenCV, dlib and the `cpbd`
package only (LSE, `lse`, and SyncNet, `syncnet`, load torch when imported themselves).

image      psnr, psnr_masked, ssim, ssim_map, ssim_masked, apd, lower_half_mask
sharpness  lap_var, cpbd, rgb_to_gray
landmarks  f_lmd, m_lmd, akd, lmd_per_frame
identity   face_descriptors, csim, aed, frechet_distance
stats      bootstrap_ci, paired_bootstrap
lse        LSE-D, LSE-C and offset from a lip-sync expert (syncnet_python's definitions, no zero padding)
syncnet    syncnet_python's SyncNet (user-provided weights) and its MFCC features
offset_recovery   shifted-audio offset recovery (the GRID sync report)
sampling   frame_sample
"""

from __future__ import annotations

# Lazy (PEP 562): `import headflow.metrics.lse` (the expert's stages) must not pull in the image,
# identity and sharpness modules, so a stage's DVC deps list only the metric modules it uses.
_MODULE_OF = {
    'BootstrapCI': 'stats',
    'PairedBootstrap': 'stats',
    'aed': 'identity',
    'akd': 'landmarks',
    'apd': 'image',
    'bootstrap_ci': 'stats',
    'cpbd': 'sharpness',
    'csim': 'identity',
    'f_lmd': 'landmarks',
    'face_descriptors': 'identity',
    'frame_sample': 'sampling',
    'frechet_distance': 'identity',
    'lap_var': 'sharpness',
    'lmd_per_frame': 'landmarks',
    'lower_half_mask': 'image',
    'm_lmd': 'landmarks',
    'paired_bootstrap': 'stats',
    'psnr': 'image',
    'psnr_masked': 'image',
    'rgb_to_gray': 'sharpness',
    'ssim': 'image',
    'ssim_map': 'image',
    'ssim_masked': 'image',
}

__all__ = [
    "BootstrapCI", "PairedBootstrap", "aed", "akd", "apd", "bootstrap_ci", "cpbd", "csim", "f_lmd",
    "face_descriptors", "frame_sample", "frechet_distance", "lap_var", "lmd_per_frame", "lower_half_mask",
    "m_lmd", "paired_bootstrap", "psnr", "psnr_masked", "rgb_to_gray", "ssim", "ssim_map", "ssim_masked",
]


def __getattr__(name: str):
    if name in _MODULE_OF:
        import importlib

        return getattr(importlib.import_module(f"headflow.metrics.{_MODULE_OF[name]}"), name)
    raise AttributeError(f"module 'headflow.metrics' has no attribute {name!r}")
