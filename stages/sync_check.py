"""DVC stage `sync_check`: every accepted clip scored with the lip-sync expert (LSE-D, LSE-C, offset);
report, drop or shift per `sync_check.mode`.

    python -m stages.sync_check
"""

from headflow import params
from headflow.stage import setup_logging
from headflow.sync.sync_check import run_stage

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("sync_check"))
