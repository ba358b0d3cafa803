"""DVC stage `generate_stylemap`: reconstruction and style-transfer videos of the evaluation clips.

    python -m stages.generate_stylemap
"""

from headflow import params
from headflow.generators.stylemap.generate import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging()
    run_stage(params.load("generate_stylemap"))
