"""DVC stage `fit3dmm`: face clips -> data/interim/fit3dmm/{fits,quarantine}.parquet + fits/ + nmfc/."""

from headflow import params
from headflow.fit3dmm.stage import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("fit3dmm"))
