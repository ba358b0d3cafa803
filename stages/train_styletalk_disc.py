"""DVC stage `train_styletalk_disc` (StyleTalk, headflow.generators.styletalk.train).

    python -m stages.train_styletalk_disc
"""

from headflow import params
from headflow.generators.styletalk.train import run_disc_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_disc_stage(params.load("train_styletalk_disc"))
