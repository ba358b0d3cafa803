"""Torch layers shared by the generator families (imports only torch, kornia and headflow.nn/losses/augment).

blocks          ConvNormAct (batch | instance | AdaIN; 2D/3D; down/up), AdaIN, ResBlock, face-vid2vid blocks
modconv         ModulatedConv2d (StyleGAN2 modulation + demodulation)
warp            affine, thin-plate-spline and 3D keypoint-volume warps (one normalised-coordinate convention)
discriminators  PatchGAN, multi-scale, temporal and region discriminators (logits + features)
perceptual      VGG19 features in torchvision's layout (built only from given weights)
expert          the Wav2Lip-style lip-sync expert (SyncNet_color): face and audio encoders
"""
