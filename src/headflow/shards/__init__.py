"""Training shards: one decode per clip, every crop the trainers read with its geometry, the mel and the labels.

- `shards` stage (`stage.py`, `cut.py`): per clip, one sequential decode of the canonical video ->
  `face96` (Wav2Lip face crop; the expert's mouth input is its lower half), `crop256` (FFHQ-style
  aligned crop), `mouth` and `eyes` boxes inside crop256, each with per-frame transforms and landmarks
  in its pixels, the valid mask and the mel: `data/interim/shards/clips/<clip_id>.npz` + shards.parquet.
- `shard_labels` stage (`labels.py`): phone labels, expressions and the NMFC file per clip, in a
  sidecar, so the lip-sync expert (which reads `shards` only) never waits for align or fit3dmm.
- `read_clip` joins both lazily; `accepted_clips` applies sync_check's keep/drop/shift decisions.
File format: `store.py`; geometry: `geometry.py`; what is where and how big: README "Shards".
"""

from headflow.shards.reader import (
    VIEWS,
    ClipNotAccepted,
    ClipShard,
    Expressions,
    ImageView,
    PhoneLabels,
    accepted_clips,
    read_clip,
)

__all__ = ["VIEWS", "ClipNotAccepted", "ClipShard", "Expressions", "ImageView", "PhoneLabels", "accepted_clips",
           "read_clip"]
