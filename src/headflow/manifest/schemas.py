"""pyarrow schemas of every manifest headflow writes, keyed by manifest name (the file stem).

Later stages register their manifests here too, so one place documents every column.
"""

from __future__ import annotations

import pyarrow as pa

WORD = pa.struct([("word", pa.string()), ("start", pa.float64()), ("end", pa.float64())])

QUARANTINE = pa.schema([
    ("clip_id", pa.string()),        # id of the rejected input (derived from its path when it has no content)
    ("stage", pa.string()),          # the stage that rejected it
    ("reason_code", pa.string()),    # machine-readable: unreadable, no_audio_stream, ...
    ("message", pa.string()),        # what was found and what was expected
    ("source_path", pa.string()),    # where the input came from, relative to its source root
])

CLIPS = pa.schema([
    ("clip_id", pa.string()),
    ("source", pa.string()),              # demo | folder | grid | lrs2
    ("source_path", pa.string()),         # relative to the source root
    ("content_hash", pa.string()),        # sha256 of the source file
    ("speaker_id", pa.string()),
    ("split", pa.string()),               # train | val | test (by speaker; val/test only speakers with usable clips)
    ("transcript", pa.string()),          # null when the source has none
    ("transcript_source", pa.string()),   # txt | lab | align | json | filelist | null
    ("words", pa.list_(WORD)),            # word alignment shipped with the source (GRID .align), else null
    ("style", pa.string()),               # speaking style the source records (demo: neutral, smiling, ...), else null
    ("native_container", pa.string()),
    ("native_fps", pa.float64()),
    ("native_n_frames", pa.int64()),
    ("native_duration_s", pa.float64()),
    ("native_width", pa.int32()),
    ("native_height", pa.int32()),
    ("rotation", pa.int16()),
    ("native_video_codec", pa.string()),
    ("native_audio_codec", pa.string()),
    ("native_sample_rate", pa.int32()),
    ("native_channels", pa.int16()),
    ("n_audio_streams", pa.int16()),
    ("video_path", pa.string()),          # canonical 25 fps CFR H.264, relative to the project root
    ("audio_path", pa.string()),          # canonical 16 kHz mono PCM wav
    ("fps", pa.int16()),
    ("sample_rate", pa.int32()),
    ("n_frames", pa.int64()),
    ("duration_s", pa.float64()),
    ("width", pa.int32()),
    ("height", pa.int32()),
    ("n_faces_probe", pa.int16()),        # faces seen on sampled frames (max over samples); null if not probed
    ("source_start_s", pa.float64()),     # the clip is [source_start_s, source_end_s) of its source file (HDTF
    ("source_end_s", pa.float64()),       #   spans, pause-cut segments); both null for a whole file
    ("source_crop", pa.list_(pa.int32())),  # [x, y, w, h] window of the upright source frame (HDTF), else null
    ("segment_index", pa.int32()),        # k-th pause-cut segment of its file or span (ingest.segment), else null
    ("segment_end", pa.string()),         # what ends that segment: pause | forced | end; null when not cut
    ("emotion", pa.string()),             # emotion the source records (MEAD), else null
    ("emotion_level", pa.int16()),        # its intensity level (MEAD 1-3), else null
    ("camera_view", pa.string()),         # camera the source records (MEAD: front, left_30, ...), else null
])

DUBBING_PAIRS = pa.schema([              # ingest (wav2lip_pairs): the list's pairs among the accepted clips
    ("clip_id", pa.string()),             # the video (its face is dubbed)
    ("audio_clip", pa.string()),          # the clip whose speech drives it
    ("video_key", pa.string()),           # the list's keys (<programme>/<utterance>)
    ("audio_key", pa.string()),
])

DEMO_CORPUS = pa.schema([
    ("source_path", pa.string()),         # relative to the demo root
    ("kind", pa.string()),                # good | bad
    ("identity", pa.string()),            # portrait used (bad clips: what they were made from)
    ("sentence", pa.string()),
    ("voice", pa.string()),
    ("rate_wpm", pa.int32()),
    ("style", pa.string()),               # speaking style (demo_corpus.styles) of good clips; null for bad ones
    ("n_frames", pa.int64()),
    ("duration_s", pa.float64()),
    ("expected_stage", pa.string()),      # bad inputs: the stage that must reject it
    ("expected_reason", pa.string()),     # bad inputs: the reason code it must get
    ("truth_path", pa.string()),          # ground-truth npz beside the clip (good clips)
])

AUDIO_FEATURES = pa.schema([
    ("clip_id", pa.string()),
    ("mel_path", pa.string()),            # (n_mel_frames, 80) float32 .npy, Wav2Lip normalisation [-4, 4]
    ("n_mel_frames", pa.int64()),         # 80 per second
    ("n_video_frames", pa.int64()),
    ("n_valid_windows", pa.int64()),      # leading video frames whose 16-frame mel window is complete
    ("duration_s", pa.float64()),
    ("rms_dbfs", pa.float64()),
    ("peak", pa.float64()),
    ("clipped_fraction", pa.float64()),
    ("mel_min", pa.float64()),
    ("mel_max", pa.float64()),
])

ALIGNMENTS = pa.schema([             # align stage: one row per aligned clip
    ("clip_id", pa.string()),
    ("backend", pa.string()),             # builtin | mfa
    ("transcript", pa.string()),
    ("n_words", pa.int32()),              # words in the normalised transcript
    ("n_aligned_words", pa.int32()),      # words given an interval (a word may get none only from MFA)
    ("n_phones", pa.int32()),             # non-silence phone intervals
    ("unpronounceable", pa.list_(pa.string())),  # words with no pronunciation (aligned as spoken noise)
    ("duration_s", pa.float64()),
    ("n_frames", pa.int64()),             # video frames labelled in frame_labels
    ("fps", pa.int16()),
    ("log_likelihood", pa.float64()),     # builtin: mean per-frame acoustic log-likelihood (NaN for mfa)
    ("textgrid_path", pa.string()),       # MFA-layout TextGrid (words + phones tiers), relative to the project root
])

ALIGNED_WORDS = pa.schema([
    ("clip_id", pa.string()),
    ("word_index", pa.int32()),           # position among the clip's aligned words
    ("word", pa.string()),                # normalised (lower case, surrounding punctuation stripped)
    ("start", pa.float64()),              # seconds from the start of the clip's audio
    ("end", pa.float64()),
])

ALIGNED_PHONES = pa.schema([
    ("clip_id", pa.string()),
    ("word_index", pa.int32()),           # index into the clip's transcript words; -1 for silence between words
    ("word", pa.string()),                # "" for silence
    ("phone", pa.string()),               # ARPAbet without stress, or SIL
    ("phone_index", pa.int16()),          # headflow.align.phones.PHONE_INDEX (SIL = 0)
    ("start", pa.float64()),              # seconds; intervals of a clip tile [0, duration]
    ("end", pa.float64()),
])

FRAME_LABELS = pa.schema([
    ("clip_id", pa.string()),
    ("frame", pa.int64()),                # video frame t covers [t/fps, (t+1)/fps), labelled at its centre
    ("phone", pa.string()),
    ("phone_index", pa.int16()),          # PHONE_INDEX
    ("styletalk_index", pa.int16()),      # StyleTalk phindex.json (SIL = 31)
])

FACES = pa.schema([
    ("clip_id", pa.string()),
    ("crop_path", pa.string()),             # 256x256 aligned crop video, relative to the project root
    ("mouth_path", pa.string()),            # Wav2Lip lower-half crop video (null unless faces.crop.mouth_video)
    ("n_frames", pa.int64()),
    ("width", pa.int32()),                  # source frame size
    ("height", pa.int32()),
    ("detection_rate", pa.float64()),       # fraction of frames with valid landmarks of the main face
    ("detector_confirmed_rate", pa.float64()),  # fraction of frames where the detector itself confirmed it
    ("n_detect_runs", pa.int32()),
    ("n_tracks", pa.int16()),               # face tracks found (duplicates merged)
    ("chosen_track", pa.int16()),           # index of the main speaker's track
    ("runner_up_ratio", pa.float64()),      # second-best / best speaker score (0 with one face)
    ("mean_face_size", pa.float64()),       # mean box width of the main face (source pixels)
    ("mean_iod", pa.float64()),             # mean inter-ocular distance (outer corners 36-45), pixels
    ("still_frames", pa.int32()),           # frames where the head is still (jitter is measured there)
    ("jitter_raw", pa.float64()),           # rigid-point 2nd difference on still frames, % IOD, as fitted
    ("jitter", pa.float64()),               # ... after smoothing
    ("crop_motion_raw", pa.float64()),      # median frame-to-frame motion of the crop (crop px), unsmoothed
    ("crop_motion", pa.float64()),          # ... smoothed (what the crop video shows)
    # Seconds spent per step. The only columns that differ between identical runs.
    ("decode_s", pa.float64()),
    ("detect_s", pa.float64()),
    ("landmarks_s", pa.float64()),
    ("smooth_s", pa.float64()),
    ("warp_s", pa.float64()),
    ("encode_s", pa.float64()),
    ("total_s", pa.float64()),             # wall time of the clip in its worker
    ("cpu_s", pa.float64()),               # CPU time of the worker and its ffmpeg encoder for the clip
])

LANDMARKS = pa.schema([
    ("clip_id", pa.string()),
    ("frame", pa.int32()),
    ("valid", pa.bool_()),                  # landmarks of the main face fitted and inside the frame
    ("detected", pa.bool_()),               # the detector confirmed the face on this frame (else tracked)
    ("score", pa.float32()),                # detector score where detected, else null
    ("box", pa.list_(pa.float32(), 4)),     # l, t, r, b source pixels (from smoothed landmarks; interpolated if invalid)
    ("landmarks", pa.list_(pa.float32(), 136)),      # smoothed 68 x (x, y) source pixels, iBUG order; null if invalid
    ("landmarks_raw", pa.list_(pa.float32(), 136)),  # as fitted per frame, before smoothing; null if invalid
    ("crop_transform", pa.list_(pa.float64(), 6)),   # 2x3 row-major source -> 256x256 aligned crop (OpenCV)
    ("crop_outside", pa.float32()),         # fraction of that crop outside the source frame (edge smear); null if invalid
])

SYNC_EVAL = pa.schema([                # train_expert: held-out clips scored with and without shifted audio
    ("clip_id", pa.string()),
    ("applied_shift", pa.int16()),        # frames the audio was delayed (> 0) or advanced (< 0); 0 = as recorded
    ("recovered_offset", pa.int16()),     # the scorer's argmin offset (null when the clip is too short)
    ("lse_d", pa.float64()),
    ("lse_c", pa.float64()),
    ("note", pa.string()),
])

SYNC_CHECK = pa.schema([               # sync_check: scores.parquet (every clip) and clips.parquet (kept + shifted)
    ("clip_id", pa.string()),
    ("offset", pa.int16()),               # argmin offset in video frames (> 0: audio lags); null if not scored
    ("lse_d", pa.float64()),              # min over offsets of the mean embedding distance (null if not scored)
    ("lse_c", pa.float64()),              # median minus min (confidence; null if not scored)
    ("action", pa.string()),              # keep | shift | drop
    ("audio_shift_frames", pa.int16()),   # frames the mel was delayed (> 0) / advanced (< 0) to correct it; 0 = none
    ("reason", pa.string()),              # null = in sync; else sync_offset | sync_low_confidence |
                                          # too_short_for_sync | frame_count_mismatch | disabled
    ("mel_path", pa.string()),            # the mel to train on: audio_features' or the shifted copy (shift)
    ("n_windows", pa.int32()),            # 5-frame video windows scored
])

DECISIONS = pa.schema([               # sync_check: decisions.parquet, what training consumers of the expert read
    ("clip_id", pa.string()),
    ("decision", pa.string()),            # keep | drop (a shifted clip is kept, with its shift)
    ("reason", pa.string()),              # as in sync_check's scores (null = in sync)
    ("audio_shift_frames", pa.int16()),   # frames the mel was delayed (> 0) / advanced (< 0); 0 = none
    ("mel_path", pa.string()),            # the mel to train on: audio_features' or sync_check's shifted copy
])

FITS = pa.schema([                     # fit3dmm: one row per fitted clip
    ("clip_id", pa.string()),
    ("model", pa.string()),                 # MorphableModel.name (builtin_demo, ict_facekit_light_face, bfm_deep3d, flame)
    ("n_id", pa.int32()),                   # identity modes fitted
    ("n_exp", pa.int32()),                  # expression modes fitted
    ("n_frames", pa.int64()),
    ("n_valid", pa.int64()),                # frames with valid landmarks (the fit used them)
    ("reproj_px_median", pa.float64()),     # median over valid frames of the mean landmark reprojection error, px
    ("reproj_iod_median", pa.float64()),    # ... as a fraction of the inter-ocular distance (outer corners)
    ("reproj_iod_p90", pa.float64()),       # 90th percentile over valid frames, fraction of IOD
    ("nmfc_coverage", pa.float64()),        # mean fraction of crop pixels the NMFC covers on valid frames
    ("jaw_open_r", pa.float64()),           # Pearson r of fitted mouth opening vs demo ground truth (null: no truth)
    ("fit_path", pa.string()),              # fit npz (headflow.fit3dmm.fitio), relative to the project root
    ("nmfc_path", pa.string()),             # NMFC frames + mask (headflow.nmfc.render.write_nmfc)
    ("fit_s", pa.float64()),                # seconds fitting (worker wall time); differ between identical runs
    ("render_s", pa.float64()),             # seconds projecting, rendering and writing the NMFC
])

EXPRESSIONS = pa.schema([               # expressions: one row per frame of every fitted clip
    ("clip_id", pa.string()),
    ("frame", pa.int32()),
    ("valid", pa.bool_()),                  # the frame had valid landmarks (pose and expression observed)
    ("exp", pa.list_(pa.float32())),        # expression coefficients; on disk a fixed-size list of K_exp
                                            # (expressions_schema); model name and K in the schema metadata
    ("angles", pa.list_(pa.float32(), 3)),  # yaw, pitch, roll in degrees; R = Rz(roll) Rx(pitch) Ry(yaw)
    ("translation", pa.list_(pa.float32(), 2)),  # source-frame pixels (scaled orthographic camera)
    ("scale", pa.float32()),                # pixels per model unit
])


SHARDS = pa.schema([                   # shards: one row per clip file (headflow.shards)
    ("clip_id", pa.string()),
    ("path", pa.string()),                  # data/interim/shards/clips/<clip_id>.npz, relative to the project root
    ("source_path", pa.string()),           # the clip's source file, relative to its source root (ingest)
    ("speaker_id", pa.string()),
    ("split", pa.string()),                 # train | val | test (ingest's, by speaker)
    ("fps", pa.int16()),
    ("video_path", pa.string()),            # the canonical video decoded (ingest)
    ("mel_path", pa.string()),              # the audio_features mel copied into the file
    ("n_frames", pa.int64()),               # video frames (= landmarks.parquet rows of the clip)
    ("n_valid", pa.int64()),                # frames with valid landmarks (the others are zeros)
    ("n_mel_frames", pa.int64()),
    ("sizes", pa.string()),                 # pixel views as `view=HxW`, space-separated
    ("codec", pa.string()),                 # zstd | zlib
    ("bytes", pa.int64()),                  # file size
    ("sha256", pa.string()),                # of the file
])

SHARD_LABELS = pa.schema([             # shard_labels: one row per shard, what annotations its sidecar holds
    ("clip_id", pa.string()),
    ("path", pa.string()),                  # data/interim/shard_labels/clips/<clip_id>.npz
    ("n_frames", pa.int64()),               # the shard's video frames (every label array has this length)
    ("has_phones", pa.bool_()),             # align's frame labels (phone_index, styletalk_index)
    ("n_labelled", pa.int64()),             # frames with a phone label (0 without phones)
    ("has_expressions", pa.bool_()),        # expression coefficients and pose per frame
    ("expression_model", pa.string()),      # the morphable model of the coefficients (null without)
    ("n_exp", pa.int32()),                  # expression coefficients per frame (null without)
    ("has_nmfc", pa.bool_()),               # the fit3dmm NMFC file is referenced (not copied)
    ("nmfc_path", pa.string()),             # fit3dmm's <clip_id>.nmfc.zip (null without)
    ("nmfc_sha256", pa.string()),
    ("bytes", pa.int64()),
    ("sha256", pa.string()),
])


def expressions_schema(n_exp: int, model: str, n_id: int | None = None) -> pa.Schema:
    """The on-disk schema of expressions.parquet: `exp` as list<float32, n_exp>, model in the metadata."""
    meta = {"model": model, "n_exp": str(n_exp)}
    if n_id is not None:
        meta["n_id"] = str(n_id)
    return EXPRESSIONS.set(EXPRESSIONS.get_field_index("exp"),
                           pa.field("exp", pa.list_(pa.float32(), n_exp))).with_metadata(meta)


PROTOCOLS = ("reconstruction", "dubbing", "reenactment", "transfer")
"""Evaluation protocols of the generation contract (DESIGN, "Generation contract")."""
OUTPUT_KINDS = ("video", "images")

GENERATED = pa.schema([                # every generate_<family> stage: generated.parquet (the generation contract)
    ("clip_id", pa.string()),             # id of this generated output, unique within (family, variant, seed)
    ("family", pa.string()),              # generator family (lipsync, head2headfs, discohead, styletalk, stylemap)
    ("variant", pa.string()),             # params variant / ablation name ("default" when there is one)
    ("seed", pa.int64()),                 # sampling seed of this output
    ("protocol", pa.string()),            # reconstruction | dubbing | reenactment | transfer
    ("source_clip", pa.string()),         # ingest clip_id giving the identity (and the frames, in reconstruction/dubbing)
    ("audio_clip", pa.string()),          # clip_id of the driving audio (null when nothing drives by audio)
    ("driver_clip", pa.string()),         # clip_id driving head motion / expression (reenactment), else null
    ("style_clip", pa.string()),          # clip_id giving the speaking style (transfer / styletalk), else null
    ("references", pa.list_(pa.int64())), # frames of source_clip given to the generator as references ([] when none)
    ("output_kind", pa.string()),         # video (mp4, driving audio muxed) | images (npz with `frames` (T, H, W, 3) uint8)
    ("output_path", pa.string()),         # relative to the project root
    ("fps", pa.float64()),                # frames per second of the output (canonical 25)
    ("frame_start", pa.int64()),          # first source frame the output covers (output frame 0 = this frame)
    ("frame_end", pa.int64()),            # one past the last; frames without a full audio window are outside, never padded
    ("checkpoint_sha256", pa.string()),   # sha256 of the generator checkpoint that produced it
])

EVAL_METRICS = (
    "psnr", "psnr_masked", "ssim", "ssim_masked", "cpbd", "lap_var", "f_lmd", "m_lmd", "m_lmd_3d", "akd", "aed",
    "csim", "apd", "apd_masked", "mask_iou", "pose_err_deg", "style_acc", "lse_d", "lse_c", "offset",
    "lse_c_loss_expert", "lse_c_syncnet", "lpips",
)
"""Per-clip metric columns of per_clip.parquet, in order (issue 13; null where a metric does not apply)."""

PER_CLIP = pa.schema([                 # evaluate: one row per (system, variant, seed, protocol, clip)
    ("system", pa.string()),              # ground_truth | baseline_<name> | the family name
    ("family", pa.string()),              # the generator family (null for ground truth and baselines)
    ("variant", pa.string()),             # generated variant (null for ground truth and baselines)
    ("protocol", pa.string()),            # reconstruction | dubbing | reenactment | transfer
    ("clip_id", pa.string()),             # the source (test) clip: rows of one protocol pair up on it
    ("seed", pa.int64()),                 # generated outputs' seed (null for ground truth and baselines)
    *[(m, pa.float64()) for m in EVAL_METRICS],
    ("audio_clip", pa.string()),          # the audio the clip was judged against
    ("frame_start", pa.int64()),          # scored frames [frame_start, frame_end) of the source clip
    ("frame_end", pa.int64()),
    ("n_frames", pa.int64()),             # frames scored by the every-frame metrics
    ("status", pa.string()),              # ok | failed (a quarantined or failed output: counts against its system)
    ("reason_code", pa.string()),         # why it failed (null when ok)
    ("note", pa.string()),                # why a metric that applies is null (e.g. a clip too short for the sync scan)
    ("output_path", pa.string()),         # the generated file (null for ground truth and baselines)
])

AGGREGATES = pa.schema([               # evaluate: one row per (system, variant, protocol, metric)
    ("system", pa.string()),
    ("family", pa.string()),
    ("variant", pa.string()),
    ("protocol", pa.string()),
    ("metric", pa.string()),              # a per_clip metric (offset aggregated as abs_offset) or a set metric (fid_face)
    ("mean", pa.float64()),               # mean over clips of the per-clip values (+inf when every clip is +inf)
    ("low", pa.float64()),                # percentile bootstrap interval of the mean (clips resampled)
    ("high", pa.float64()),
    ("n", pa.int64()),                    # clips with a finite value
    ("n_dropped", pa.int64()),            # clips whose value was NaN or infinite (not in the mean; shown in the report)
    ("n_failed", pa.int64()),             # failed outputs, counted in the mean at the worst value on their clip
    ("ci", pa.float64()),
    ("higher_is_better", pa.bool_()),
    ("note", pa.string()),                # why the metric is null (missing weights, not applicable, ...)
])

COMPARISONS = pa.schema([              # evaluate: paired bootstrap of a system against each baseline, same clips
    ("system", pa.string()),
    ("variant", pa.string()),
    ("protocol", pa.string()),
    ("opponent", pa.string()),            # baseline_<name> (or ground_truth)
    ("metric", pa.string()),
    ("diff", pa.float64()),               # mean(system - opponent) over clips where both are finite
    ("low", pa.float64()),
    ("high", pa.float64()),
    ("n", pa.int64()),
    ("n_dropped", pa.int64()),
    ("n_failed", pa.int64()),             # paired clips where the system's output failed: scored at the worst value
    ("winner", pa.string()),              # system | opponent | none (none when the interval contains 0)
])


SCHEMAS: dict[str, pa.Schema] = {
    "quarantine": QUARANTINE,
    "clips": CLIPS,
    "dubbing_pairs": DUBBING_PAIRS,
    "corpus": DEMO_CORPUS,
    "audio_features": AUDIO_FEATURES,
    "alignments": ALIGNMENTS,
    "words": ALIGNED_WORDS,
    "phones": ALIGNED_PHONES,
    "frame_labels": FRAME_LABELS,
    "faces": FACES,
    "landmarks": LANDMARKS,
    "sync_eval": SYNC_EVAL,
    "sync_check": SYNC_CHECK,
    "decisions": DECISIONS,
    "fits": FITS,
    "expressions": EXPRESSIONS,
    "shards": SHARDS,
    "shard_labels": SHARD_LABELS,
    "generated": GENERATED,
    "per_clip": PER_CLIP,
    "aggregates": AGGREGATES,
    "comparisons": COMPARISONS,
}


def schema_for(kind: str) -> pa.Schema:
    """The schema of manifest `kind` (e.g. 'clips', 'quarantine')."""
    try:
        return SCHEMAS[kind]
    except KeyError:
        raise KeyError(f"no schema registered for manifest '{kind}'; known: {sorted(SCHEMAS)}") from None
