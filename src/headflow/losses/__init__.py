"""Small loss terms (imports only torch, kornia and headflow.nn/losses/augment); each returns a scalar.

gan         d_loss / g_loss (hinge | non_saturating | least_squares), r1_penalty, feature_matching
image       masked_l1, fill_invalid, image_gradient_l1
ssim        ms_ssim (Wang et al. 2003, with a scale count that fits small crops)
perceptual  PerceptualLoss: VGG19 feature L1, or the weight-free (1 - MS-SSIM) + gradient L1
sync        sync_loss / expert_sync_loss (Wav2Lip's lip-sync expert BCE)
"""
