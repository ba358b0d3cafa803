"""DVC stage `faces`: ingested clips -> data/interim/faces/{faces,landmarks,quarantine}.parquet + crops/."""

from headflow import params
from headflow.faces.stage import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("faces"))
