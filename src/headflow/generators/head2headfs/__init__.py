"""Head2HeadFS (Doukas et al. 2021): NMFC-conditioned sequential video renderer with an identity embedder,
multi-person initialisation, few-shot fine-tuning and head reenactment.

params.py (the three stages' blocks), masks.py (weight-free foreground masks), data.py (clips, windows,
optical flow), model.py (E_id, G, D^I with identity projection, D^M, D^V; person-specific files), losses.py
(the harness's step objects), train.py (train_head2headfs), finetune.py (finetune_head2headfs),
reenact.py (source-to-target NMFC), generate.py (generate_head2headfs).
"""
