"""DVC stage `train_judge`: the sync judge, the train_expert stage run with the `train_judge` block into the
judge's catalog paths (data/models/judge); no generator trains against it.

    python -m stages.train_judge
"""

from headflow import params
from headflow.evaluate.judge import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("train_judge"))
