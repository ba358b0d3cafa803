"""DVC stage `evaluate`: ground truth, baselines and every generated output on the test clips; metrics and report.

    python -m stages.evaluate
"""

from headflow import params
from headflow.evaluate.stage import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("evaluate"))
