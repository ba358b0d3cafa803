"""The `styletalk` family: phonemes + a style clip -> 3DMM expression sequences (StyleTalk, Ma et al. AAAI 2023;
papers/styletalk.txt).

params (sizes, ablation switches) -> geometry (lower/upper-face mode split per morphable model, mouth vertices,
projection with the fit's identity and camera) -> data (clips, bad-input checks, phoneme windows, samples) ->
model (E_a, E_s, E_d, the exported model) -> discriminators (D_sync, D_style, D_tem) -> losses (terms, the
harness's steps) -> train (train_styletalk_disc, train_styletalk) -> generate (expressions -> NMFC and a shaded
render, with the replay and neutral-style baselines; generate_styletalk). style_classifier: style accuracy by a
classifier fitted on real sequences only (bench/styletalk.py).
"""
