"""DisCoHead generator family (papers/discohead.txt).

params    the train_discohead / generate_discohead blocks (variants: affine|tps x DM|NM)
motion    head-motion predictor: affine from a heatmap (SVD), TPS from keypoints
model     motion-aware encoder, audio and eye encoders, modulated decoder, the exported generator
data      clips from shards, the 400 ms mel window, the eye mask, training samples
losses    the step object (L1 + perceptual)
train     train_discohead
generate  generate_discohead (reconstruction, transfer)
released  the authors' released (affine) checkpoint layout, loaded strictly from a user's file
"""
