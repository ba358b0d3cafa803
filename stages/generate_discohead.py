"""DVC stage `generate_discohead`: reconstruction and disentangled-control (transfer) outputs of the evaluation clips.

    python -m stages.generate_discohead
"""

from headflow import params
from headflow.generators.discohead.generate import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("generate_discohead"))
