"""DVC stage `train_discohead`: DisCoHead (one variant, `model.head_motion` x `model.encoder`) on the accepted shards.

    python -m stages.train_discohead
    torchrun --nproc_per_node=N -m stages.train_discohead     # DDP on GPUs; rank 0 writes
"""

from headflow import params
from headflow.generators.discohead.train import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("train_discohead"))
