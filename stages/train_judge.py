"""DVC stage `train_judge`: the sync judge, an expert trained by train_expert's code that no generator trains against.

    python -m stages.train_judge
"""

from headflow import params
from headflow.evaluate.judge import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging()
    run_stage(params.load("train_judge"))
