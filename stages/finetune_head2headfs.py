"""DVC stage `finetune_head2headfs`: one person-specific Head2HeadFS generator per held-out speaker.

    python -m stages.finetune_head2headfs
"""

from headflow import params
from headflow.generators.head2headfs.finetune import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("finetune_head2headfs"), params.load("train_head2headfs"))
