"""DVC stage `train_lipsync`: the reference-attention lip-sync U-Net on the accepted shards (both stages).

    python -m stages.train_lipsync
    torchrun --nproc_per_node=N -m stages.train_lipsync     # DDP on GPUs; rank 0 writes
"""

from headflow import params
from headflow.generators.lipsync.train import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("train_lipsync"))
