"""DVC stage `train_expert`: the lip-sync expert from the shards' face96 crops (lower half) + mels, evaluated on held-out speakers.

    python -m stages.train_expert
    torchrun --nproc_per_node=N -m stages.train_expert     # DDP on GPUs; rank 0 writes
"""

from headflow import params
from headflow.stage import setup_logging
from headflow.sync.train_expert import run_stage

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("train_expert"))
