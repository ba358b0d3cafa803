"""Differentiable augmentations for GAN training (imports only torch, kornia and headflow.nn/losses/augment).

diffaugment  DiffAugment (Zhao et al. 2020): color, translation, cutout; seeded; shareable parameters
"""
