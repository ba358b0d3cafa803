"""DVC stage `generate_styletalk` (StyleTalk, headflow.generators.styletalk.generate).

    python -m stages.generate_styletalk
"""

from headflow import params
from headflow.generators.styletalk.generate import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("generate_styletalk"))
