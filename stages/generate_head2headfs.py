"""DVC stage `generate_head2headfs`: self- and source-to-target reenactment with the fine-tuned generators.

    python -m stages.generate_head2headfs
"""

from headflow import params
from headflow.generators.head2headfs.generate import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("generate_head2headfs"), params.load("train_head2headfs"))
