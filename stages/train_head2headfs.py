"""DVC stage `train_head2headfs`: the Head2HeadFS initialisation stage (G + E_id, D^I, D^M, D^V) on every
training identity.

    python -m stages.train_head2headfs
    torchrun --nproc_per_node=N -m stages.train_head2headfs     # DDP on GPUs; rank 0 writes
"""

from headflow import params
from headflow.generators.head2headfs.train import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("train_head2headfs"))
