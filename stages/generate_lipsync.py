"""DVC stage `generate_lipsync`: dub the evaluation clips (reconstruction and dubbing) with the trained generator.

    python -m stages.generate_lipsync
"""

from headflow import params
from headflow.generators.lipsync.generate import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("generate_lipsync"))
