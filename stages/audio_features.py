"""DVC stage `audio_features`: clips.parquet -> per-clip Wav2Lip mel spectrograms + audio_features.parquet."""

from headflow import params
from headflow.audio.stage import run_stage
from headflow.stage import setup_logging

if __name__ == "__main__":
    setup_logging(__doc__)
    run_stage(params.load("audio_features"))
