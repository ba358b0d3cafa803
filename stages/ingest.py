"""DVC stage `ingest`: raw videos -> data/interim/ingest/{clips,quarantine}.parquet + canonical media."""

from headflow import params
from headflow.ingest.stage import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("ingest"))
