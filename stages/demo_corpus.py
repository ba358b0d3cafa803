"""DVC stage `demo_corpus`: render the demo talking-face corpus into data/raw/demo."""

from headflow import params
from headflow.demo.stage import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("demo_corpus"))
