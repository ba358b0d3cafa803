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

from headflow.metrics.identity import aed, csim, face_descriptors, frechet_distance
from headflow.metrics.image import apd, lower_half_mask, psnr, psnr_masked, ssim, ssim_map, ssim_masked
from headflow.metrics.landmarks import akd, f_lmd, lmd_per_frame, m_lmd
from headflow.metrics.sampling import frame_sample
from headflow.metrics.sharpness import cpbd, lap_var, rgb_to_gray
from headflow.metrics.stats import BootstrapCI, PairedBootstrap, bootstrap_ci, paired_bootstrap

__all__ = [
    "BootstrapCI", "PairedBootstrap", "aed", "akd", "apd", "bootstrap_ci", "cpbd", "csim", "f_lmd",
    "face_descriptors", "frame_sample", "frechet_distance", "lap_var", "lmd_per_frame", "lower_half_mask",
    "m_lmd", "paired_bootstrap", "psnr", "psnr_masked", "rgb_to_gray", "ssim", "ssim_map", "ssim_masked",
]
