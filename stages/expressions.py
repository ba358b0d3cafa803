"""DVC stage `expressions`: 3DMM fits -> data/interim/expressions/expressions.parquet (+ deep3d/*.mat)."""

from headflow import params
from headflow.expressions.stage import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("expressions"))
