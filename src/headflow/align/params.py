"""Params of the `align` stage (block `align` in params.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from headflow.config import require


@dataclass
class BuiltinAlignerParams:
    """The builtin aligner: monophone HMMs trained on the corpus being aligned (see align/builtin.py).

    The aligner takes this block itself as its configuration (`builtin.train_and_align(cfg=...)`)."""

    init: Literal["flat", "espeak_dtw", "espeak_hmm"] = "espeak_hmm"
    """Initial segmentation: phones spread evenly over the speech (flat); espeak-ng's synthesis of the transcript
    warped onto the audio by DTW (espeak_dtw); or Viterbi with a model estimated from espeak-ng's synthesis
    of every transcript in three voices, exact timings, plus the real pauses (espeak_hmm; see align/synth.py)."""
    var_mix: float = 1.0
    """espeak_hmm: share of the pooled variance mixed into the synthetic model's variances (robustness to
    the real speakers). 1.0 (every state shares the pooled variance: espeak's own variances say little
    about a real speaker) moved cold_corpus (the tuning recording) from 64.6% to 75.1% of phone boundaries
    within 40 ms; 0.3 was the earlier default."""
    iterations: int = 10
    """Rounds of re-estimation + Viterbi re-alignment."""
    split_at: list[int] = field(default_factory=lambda: [4, 7])
    """Iterations after which every state's Gaussian mixture doubles."""
    shift_ms: float = 10.0
    """Feature frame shift (the time resolution of the boundaries)."""
    max_pronunciations: int = 3
    """Pronunciations per word the graph may choose from (the dictionary's first n; parallel chains,
    builtin.segments_for), as MFA's lexicon graph does; 1 = the first only. Alone it moved nothing on
    real speech; with `speech_penalty` it is most of the word-boundary gain (docs/results/align.md)."""
    p_silence: float = 0.3
    """Prior probability of a pause after each word."""
    var_floor: float = 0.02
    """Floor of every Gaussian's variance, as a fraction of the corpus's feature variance."""
    pause_penalty: float = 5.0
    """Voice-activity-aware silence: log-likelihood subtracted from every speech state (phones, spoken
    noise) on frames in a pause (a run of quiet frames of at least `pause_min_ms`, features.pause_frames),
    so words are not stretched over pauses; 0 turns it off."""
    long_pause_ms: float = 500.0
    """Pauses at least this long (quiet runs) get `long_pause_weight` x `pause_penalty`."""
    long_pause_weight: float = 3.0
    """Weight of the penalty in long pauses (1 = the same as in short ones). 3 took the joined-pauses file
    from 1 word inside a pause to none; cold_corpus moved from 75.9% to 72.3% within 40 ms with it."""
    pause_min_ms: float = 150.0
    """Shortest run of quiet frames that counts as a pause for `pause_penalty`."""
    speech_penalty: float = 2.0
    """The other half of the voice-activity-aware silence: log-likelihood subtracted from the SIL states on
    frames above the recording's floor (features.loud_frames above `loud_level`), so the silence model,
    estimated from a handful of the corpus's pauses, does not swallow quiet word edges (nasal holds, final
    consonants, soft onsets) that the corpus's own phone models fit badly; 0 turns it off. Chosen on
    cold_corpus (1.5-3 with loud_level 0.1-0.15 all within 2 points there, mean of 5 dither seeds)."""
    loud_level: float = 0.15
    """Frames above this fraction of the way from the recording's energy floor (5th percentile) to its
    top (95th) count as not-silence for `speech_penalty`."""
    lda_dim: int = 30
    """LDA features (Kaldi's LDA training stage): at iteration `lda_at` the static cepstra (c0-c12) spliced over
    +-`lda_context` frames are projected onto this many linear discriminants of the current alignment's HMM
    states (builtin.lda_transform), and training restarts from single Gaussians on them; 0 turns it off
    (MFCC + deltas throughout, as also on corpora under builtin.LDA_MIN_FRAMES_PER_DIM frames per spliced
    dimension, ~18 s of audio at +-3 frames). 30 moved cold_corpus (the tuning recording) from 74.8% to 77.7% of word
    boundaries within 40 ms and the held-out acoustic_corpus from 84.9% to 86.6% (mean of 5 dither seeds;
    20-35 all within a point of it); with `speech_penalty` 3 (chosen with it) 78.2% / 86.9%."""
    lda_at: int = 3
    """Iteration at which the LDA is estimated (the alignment of the espeak-ng initial model re-estimated
    `lda_at` times; min(lda_at, iterations) when there are fewer iterations). 1-2 measured worse, 5 the same."""
    lda_context: int = 3
    """Frames each side spliced for the LDA (Kaldi's default, 7 frames = 70 ms in all)."""
    onset_snap_ms: float = 30.0
    """After the last Viterbi pass, each word onset after a pause moves to the first frame above `loud_level`
    within +-this many ms (builtin.snap_onsets; whole frames, floor(onset_snap_ms / shift_ms): under one
    `shift_ms` it snaps nothing); 0 turns it off. 30 moved real-speech word boundaries within
    40 ms of MFA from 81.4% to 83.3% (5 dither seeds, both recordings; held out 86.6% -> 88.6%), chosen on
    cold_corpus among 20 / 30 / 40 / 50 ms (78.5 / 79.5 / 78.9 / 76.8%; docs/results/align.md)."""
    dither_seed: int = 0
    """Seed of the features' dither (features.mfcc_features); other seeds measure how much a figure owes to
    chance (bench/align.py --seeds)."""
    pause_gap_ms: float = 30.0
    """Louder blips up to this long between quiet frames (clicks, breath peaks) are bridged before runs
    are measured (features.pause_frames)."""

    def validate(self) -> None:
        require(self.iterations >= 1, "iterations", self.iterations, ">= 1")
        require(self.max_pronunciations >= 1, "max_pronunciations", self.max_pronunciations, ">= 1 (1 = first only)")
        require(0 < self.p_silence < 1, "p_silence", self.p_silence, "a probability in (0, 1)")
        require(0 <= self.var_mix <= 1, "var_mix", self.var_mix, "a share in [0, 1]")
        require(self.shift_ms > 0, "shift_ms", self.shift_ms, "> 0 ms")
        require(self.var_floor > 0, "var_floor", self.var_floor, "> 0")
        require(self.pause_penalty >= 0, "pause_penalty", self.pause_penalty, ">= 0 (0 = off)")
        require(self.speech_penalty >= 0, "speech_penalty", self.speech_penalty, ">= 0 (0 = off)")
        require(self.lda_dim >= 0, "lda_dim", self.lda_dim, ">= 0 (0 = off)")
        require(self.lda_context >= 0, "lda_context", self.lda_context, ">= 0 frames")
        require(self.lda_dim <= 13 * (2 * self.lda_context + 1), "lda_dim", self.lda_dim,
                f"<= {13 * (2 * self.lda_context + 1)}: 13 cepstra x {2 * self.lda_context + 1} spliced frames "
                "(raise lda_context or lower lda_dim)")
        require(self.lda_at >= 0, "lda_at", self.lda_at, ">= 0")
        require(self.dither_seed >= 0, "dither_seed", self.dither_seed, ">= 0")
        require(0 < self.loud_level < 1, "loud_level", self.loud_level, "a fraction in (0, 1)")
        require(self.pause_gap_ms >= 0, "pause_gap_ms", self.pause_gap_ms, ">= 0 ms")
        require(self.long_pause_weight >= 1, "long_pause_weight", self.long_pause_weight, ">= 1")
        require(self.pause_min_ms > 0, "pause_min_ms", self.pause_min_ms, "> 0 ms")
        require(self.onset_snap_ms >= 0, "onset_snap_ms", self.onset_snap_ms, ">= 0 ms (0 = off)")


@dataclass
class MfaParams:
    """The external Montreal Forced Aligner (`mfa` command on PATH, installed from conda-forge)."""

    command: str = "mfa"
    """Executable to run."""
    dictionary: str = "english_us_arpa"
    """MFA dictionary: a name installed with `mfa model download dictionary NAME`, or a file path."""
    acoustic_model: str = "english_us_arpa"
    """MFA acoustic model: a name installed with `mfa model download acoustic NAME`, or a zip path."""
    num_jobs: int = 2
    """Parallel jobs MFA may use."""
    extra_args: list[str] = field(default_factory=list)
    """Further arguments for `mfa align` (e.g. ['--beam', '100'])."""


@dataclass
class AlignParams:
    """Word and phone alignment of every clip's transcript; per-frame phone labels at the canonical fps."""

    backend: Literal["builtin", "mfa"] = "builtin"
    """builtin: offline HMM aligner trained on this corpus; mfa: the Montreal Forced Aligner (external)."""
    language: str = "en"
    """en: CMU dictionary, then espeak-ng for other words; any other espeak language code: espeak-ng only."""
    dictionary: str | None = None
    """Optional MFA-format pronunciation dictionary (relative to the project root) that overrides both. Its
    words are matched in the transcript as written (lower case), before punctuation is stripped, so
    entries such as `wit'`, `rock'n'roll` or `a.m.` are used."""
    reject_unpronounceable: bool = False
    """Quarantine clips with a word nobody can pronounce (else they are aligned as spoken noise and reported)."""
    fps: int = 25
    """Frame rate of the per-frame phone labels. The labels always cover the whole clip: its duration
    (video frames / the clip's fps) x this rate, so 25 gives one label per canonical video frame and 30
    (StyleTalk's rate) 90 labels for a 3 s clip; frame t takes the phone at (t + 0.5) / fps."""
    builtin: BuiltinAlignerParams = field(default_factory=BuiltinAlignerParams)
    mfa: MfaParams = field(default_factory=MfaParams)
    max_reject_fraction: float = 0.5
    """Fail the stage when more than this fraction of clips is quarantined."""
    workers: int = 2
    """Processes reading audio and preparing each clip's initial alignment in parallel."""

    def validate(self) -> None:
        require(self.fps >= 1, "fps", self.fps, ">= 1")
        require(0 <= self.max_reject_fraction <= 1, "max_reject_fraction", self.max_reject_fraction, "a fraction in [0, 1]")
        require(self.workers >= 1, "workers", self.workers, ">= 1")
