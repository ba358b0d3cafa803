"""Audio features: the Wav2Lip-compatible mel spectrogram and its per-video-frame windows."""

from headflow.audio.mel import MelConfig, mel_spectrogram, mel_window, mel_window_start, valid_window_frames

__all__ = ["MelConfig", "mel_spectrogram", "mel_window", "mel_window_start", "valid_window_frames"]
