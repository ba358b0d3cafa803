"""DVC stage `shard_labels`: align + fit3dmm + expressions -> data/interim/shard_labels/ (sidecars of the shards)."""

from headflow import params
from headflow.shards.labels import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("shard_labels"))
