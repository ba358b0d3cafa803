"""DVC stage `train_stylemap`: the Style Mapping module (face-vid2vid lineage) on the accepted shards.

    python -m stages.train_stylemap
    torchrun --nproc_per_node=N -m stages.train_stylemap     # DDP on GPUs; rank 0 writes
"""

from headflow import params
from headflow.generators.stylemap.train import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("train_stylemap"))
