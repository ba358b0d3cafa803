"""DVC stage `align`: clips.parquet -> word/phone alignments, MFA-layout TextGrids, per-frame phone labels."""

from headflow import params
from headflow.align.stage import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("align"))
