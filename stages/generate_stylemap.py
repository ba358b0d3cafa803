"""DVC stage `generate_stylemap`: reconstruction and style-transfer videos of the evaluation clips.

    python -m stages.generate_stylemap
"""

from headflow import params
from headflow.generators.stylemap.generate import Measures, run_stage
from headflow.metrics.transfer import identity_interval, pose_intervals, transfer_identity
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    # the family may not import metrics/ (DESIGN): the pose and identity intervals are passed in
    run_stage(params.load("generate_stylemap"), measures=Measures(pose_intervals, transfer_identity, identity_interval))
