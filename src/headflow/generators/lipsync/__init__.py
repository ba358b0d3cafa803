"""The `lipsync` family: the reference-attention lip-sync U-Net (papers/lipsync_coursework.txt, Wav2Lip lineage).

params (sizes, ablation switches) -> data (windows, KMeans references, masks) -> model (the U-Net, the
exported generator file) -> losses (terms by name, the harness's step objects) -> train (both stages on
the shared harness; the train_lipsync stage) -> generate (pasting back, encoding; the generate_lipsync stage).
"""
