"""DVC stage `shards`: faces + audio_features -> data/interim/shards/{clips/,shards.parquet,quarantine.parquet}."""

from headflow import params
from headflow.shards.stage import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("shards"))
