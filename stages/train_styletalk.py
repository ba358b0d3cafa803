"""DVC stage `train_styletalk` (StyleTalk, headflow.generators.styletalk.train).

    python -m stages.train_styletalk
"""

from headflow import params
from headflow.generators.styletalk.train import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("train_styletalk"))
