"""Where every stage writes, what it reads, and the accepted-clips joins: the one map of the data tree.

Every path here is relative to the project root (the folder holding `dvc.yaml`); `Catalog(root)`
gives the same layout under another root (a test folder). Each stage's `run_stage` takes its paths as
keywords that default to `CATALOG`'s, `headflow.summary` and `pipelines/preprocess.py` read them from
here, and `tests/test_catalog.py` checks that `dvc.yaml` declares the same outs, metrics, plots and
data deps, so a path is written down once.

    data/raw/demo/                          demo_corpus (corpus.parquet, clips, ground truth, bad inputs)
    data/interim/<stage>/<manifest>.parquet a stage's manifests, quarantine.parquet among them
    data/interim/<stage>/<artifacts>/       its per-clip artifacts (media/, mel/, crops/, fits/, ...)
    data/models/<name>/                     trained networks (persist: a run resumes from last.pt)
    reports/metrics/<stage>.json            DVC metrics; reports/plots/, reports/<stage>/ DVC plots
    reports/report.html                     evaluate's page (a further out of the stage)

Which clips go on is decided by two joins (`preprocessing_clips`, `training_clips`):

- preprocessing: ingest's clips x faces' tracked clips. fit3dmm fits these, so fits and expressions
  never wait for (or re-run with) the lip-sync expert.
- training: the preprocessing join x audio_features' mels x sync_check's `decisions.parquet` (kept
  clips only, `mel_path` corrected for shifted clips). Consumers of training data read this join and
  depend on the small decisions file, not on the expert: a new expert that decides the same re-runs
  nothing downstream. `expert_clips` is the join the expert itself trains and scores on (before its
  own decisions exist).

Generated outputs: every stage named `generate_<family>` writes `generated.parquet` (the generation
contract, `headflow.manifest.generated`), and the `evaluate` stage reads the manifest of each one in
`STAGES` (`Catalog.generated_manifests`): a new family's generate stage is an entry here (before
`evaluate`) and its dvc.yaml block; evaluate's data deps then gain its manifest (the catalog test says
which line dvc.yaml is missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from headflow.manifest import read_manifest

INTERIM = "data/interim"
METRICS_DIR = "reports/metrics"


@dataclass(frozen=True)
class StageOutputs:
    """One stage's outputs and data inputs, as paths relative to the project root.

    Attributes:
        name: the DVC stage (and params block) name.
        folder: the stage's output folder (one DVC out).
        manifests: stems of the Parquet manifests it writes in `folder`.
        artifacts: names of its per-clip artifact folders in `folder`.
        models: name -> folder of trained networks (further DVC outs, kept between runs).
        metrics: its DVC metrics file, or None.
        plots: name -> DVC plot file.
        reports: name -> a further file the stage writes outside `folder` (a DVC out, e.g. an HTML page).
        reads: its data inputs: `"<stage>.<item>"` (a manifest, artifact folder or model of an earlier
            stage) or a params-templated path such as `"${ingest.root}"` (as dvc.yaml writes it).
    """

    name: str
    folder: str
    manifests: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    models: dict[str, str] = field(default_factory=dict)
    metrics: str | None = None
    plots: dict[str, str] = field(default_factory=dict)
    reports: dict[str, str] = field(default_factory=dict)
    reads: tuple[str, ...] = ()


def _interim(name: str, manifests: tuple[str, ...], artifacts: tuple[str, ...] = (), **kw) -> StageOutputs:
    return StageOutputs(name, f"{INTERIM}/{name}", manifests, artifacts, metrics=f"{METRICS_DIR}/{name}.json", **kw)


_CLIPS_AND_MEDIA = ("ingest.clips", "ingest.media")
_EXPERT_INPUTS = (*_CLIPS_AND_MEDIA, "faces.faces", "faces.landmarks", "audio_features.audio_features",
                  "audio_features.mel")
GENERATE_PREFIX = "generate_"
"""Stages named `generate_<family>` write `generated.parquet`, which `evaluate` scores."""
_EVALUATE_INPUTS = (*_EXPERT_INPUTS, "train_judge.judge", "train_expert.expert", "ingest.dubbing_pairs")
"""The real clips, their faces geometry and mels, the sync judge and the expert generators train against."""


def evaluate_stage(earlier: dict[str, StageOutputs]) -> StageOutputs:
    """The `evaluate` entry: its fixed inputs plus the `generated` manifest of every `generate_<family>`
    stage among `earlier` (the stages before it, in pipeline order)."""
    generated = tuple(f"{name}.generated" for name in earlier if name.startswith(GENERATE_PREFIX))
    return _interim("evaluate", ("per_clip", "aggregates", "comparisons", "quarantine"),
                    plots={"systems": "reports/plots/evaluate.json"}, reports={"page": "reports/report.html"},
                    reads=(*_EVALUATE_INPUTS, *generated))


_PIPELINE: dict[str, StageOutputs] = {s.name: s for s in (
    StageOutputs("demo_corpus", "data/raw/demo", ("corpus",), metrics=f"{METRICS_DIR}/demo_corpus.json"),
    _interim("ingest", ("clips", "quarantine", "dubbing_pairs"), ("media",), reads=("${ingest.root}",)),
    _interim("audio_features", ("audio_features", "quarantine"), ("mel",), reads=_CLIPS_AND_MEDIA),
    _interim("align", ("alignments", "words", "phones", "frame_labels", "quarantine"), ("textgrids",),
             reads=_CLIPS_AND_MEDIA),
    _interim("faces", ("faces", "landmarks", "quarantine"), ("crops", "mouth"), reads=_CLIPS_AND_MEDIA),
    _interim("shards", ("shards", "quarantine"), ("clips",), reads=_EXPERT_INPUTS),
    _interim("train_expert", ("sync_eval", "quarantine"), models={"expert": "data/models/expert"},
             plots={"history": "reports/plots/expert_history.json"}, reads=("shards.shards", "shards.clips")),
    _interim("sync_check", ("scores", "clips", "decisions", "quarantine"), ("mel",),
             reads=("shards.shards", "shards.clips", "train_expert.expert")),
    _interim("fit3dmm", ("fits", "quarantine"), ("fits", "nmfc"), plots={"preview": "reports/fit3dmm/preview.png"},
             reads=("ingest.clips", "faces.faces", "faces.landmarks", "faces.crops")),
    _interim("expressions", ("expressions",), ("deep3d",), reads=("fit3dmm.fits", "fit3dmm.fits/")),
    _interim("shard_labels", ("shard_labels", "quarantine"), ("clips",),
             reads=("shards.shards", "align.frame_labels", "fit3dmm.fits", "fit3dmm.nmfc", "expressions.expressions")),
    # the sync judge: train_expert's stage with its own params block; no generator trains against it
    _interim("train_judge", ("sync_eval", "quarantine"), models={"judge": "data/models/judge"},
             plots={"history": "reports/plots/judge_history.json"}, reads=("shards.shards", "shards.clips")),
    _interim("train_lipsync", ("quarantine",), models={"generator": "data/models/lipsync"},
             plots={"history": "reports/plots/lipsync_history.json"},
             reads=("shards.shards", "shards.clips", "sync_check.clips", "train_expert.expert")),
    # generate_<family> stages go here, before evaluate
    _interim("generate_lipsync", ("generated", "quarantine"), ("videos",),
             reads=("ingest.clips", "ingest.media", "faces.faces", "audio_features.audio_features", "shards.shards",
                    "shards.clips", "train_lipsync.generator", "ingest.dubbing_pairs")),
    # DisCoHead (headflow.generators.discohead): train on crop256 + mel, generate reconstruction and transfer
    _interim("train_discohead", ("quarantine",), models={"generator": "data/models/discohead"},
             plots={"history": "reports/plots/discohead_history.json"},
             reads=("shards.shards", "shards.clips", "sync_check.clips")),
    _interim("generate_discohead", ("generated", "quarantine"), ("videos",),
             reads=("ingest.clips", "ingest.media", "faces.faces", "audio_features.audio_features", "shards.shards",
                    "shards.clips", "train_discohead.generator")),
    # stylemap family (Style Mapping, face-vid2vid lineage)
    _interim("train_stylemap", ("quarantine",), models={"generator": "data/models/stylemap"},
             plots={"history": "reports/plots/stylemap_history.json"},
             reads=("shards.shards", "shards.clips", "shard_labels.shard_labels", "shard_labels.clips",
                    "sync_check.clips")),
    _interim("generate_stylemap", ("generated", "quarantine"), ("videos",),
             reads=("ingest.clips", "ingest.media", "faces.faces", "audio_features.audio_features",
                    "audio_features.mel", "shards.shards", "shards.clips", "shard_labels.shard_labels",
                    "shard_labels.clips", "train_stylemap.generator")),
    # --- styletalk (issue 18) ---
    _interim("train_styletalk_disc", ("quarantine",), models={"discriminators": "data/models/styletalk_disc"},
             reads=("ingest.clips", "shards.shards", "shards.clips", "sync_check.clips", "shard_labels.shard_labels",
                    "shard_labels.clips")),
    _interim("train_styletalk", ("quarantine",), models={"generator": "data/models/styletalk"},
             plots={"history": "reports/plots/styletalk_history.json"},
             reads=("ingest.clips", "shards.shards", "shards.clips", "sync_check.clips", "shard_labels.shard_labels",
                    "shard_labels.clips", "train_styletalk_disc.discriminators")),
    _interim("generate_styletalk", ("generated", "quarantine"), ("videos", "nmfc", "expressions"),
             reads=("ingest.clips", "ingest.media", "faces.faces", "audio_features.audio_features", "shards.shards",
                    "shards.clips", "sync_check.clips", "shard_labels.shard_labels", "shard_labels.clips", "fit3dmm.fits",
                    "fit3dmm.fits/", "train_styletalk.generator", "train_styletalk_disc.discriminators")),
    # --- end styletalk ---
    # head2headfs: initialisation -> per-target fine-tuning -> reenactment
    _interim("train_head2headfs", ("quarantine",), models={"generator": "data/models/head2headfs/init"},
             plots={"history": "reports/plots/head2headfs_history.json"},
             reads=("shards.shards", "shards.clips", "sync_check.clips", "shard_labels.shard_labels",
                    "shard_labels.clips", "fit3dmm.nmfc")),
    _interim("finetune_head2headfs", ("quarantine",), models={"generators": "data/models/head2headfs/people"},
             reads=("shards.shards", "shards.clips", "sync_check.clips", "shard_labels.shard_labels",
                    "shard_labels.clips", "fit3dmm.nmfc", "train_head2headfs.generator")),
    _interim("generate_head2headfs", ("generated", "quarantine"), ("videos",),
             reads=("ingest.clips", "ingest.media", "faces.faces", "audio_features.audio_features", "shards.shards",
                    "shards.clips", "shard_labels.shard_labels", "shard_labels.clips", "fit3dmm.fits",
                    "fit3dmm.fits/", "fit3dmm.nmfc", "finetune_head2headfs.generators")),
)}
STAGES: dict[str, StageOutputs] = {**_PIPELINE, "evaluate": evaluate_stage(_PIPELINE)}
"""Every DVC stage in pipeline order (`evaluate` last). A new stage needs an entry here and a block in dvc.yaml."""


class Catalog:
    """The catalog's paths under one project root (`Catalog()`: the current folder, as DVC runs stages).

    Paths come back as `root / relative`; with the default root "." they stay relative, which is how
    manifests record artifact paths (relative to the project root).
    """

    def __init__(self, root: str | Path = ".", stages: dict[str, StageOutputs] | None = None):
        self.root = Path(root)
        self.stages = STAGES if stages is None else stages

    def stage(self, name: str) -> StageOutputs:
        try:
            return self.stages[name]
        except KeyError:
            raise KeyError(f"no stage '{name}' in the catalog; known: {', '.join(self.stages)}") from None

    def folder(self, stage: str) -> Path:
        """The stage's output folder, e.g. data/interim/faces."""
        return self.root / self.stage(stage).folder

    def manifest(self, stage: str, name: str) -> Path:
        """A manifest of `stage`, e.g. `manifest("faces", "landmarks")` -> data/interim/faces/landmarks.parquet."""
        s = self.stage(stage)
        if name not in s.manifests:
            raise KeyError(f"stage '{stage}' writes no manifest '{name}'; it writes {', '.join(s.manifests)}")
        return self.root / s.folder / f"{name}.parquet"

    def quarantine(self, stage: str) -> Path:
        return self.manifest(stage, "quarantine")

    def artifacts(self, stage: str, name: str) -> Path:
        """A per-clip artifact folder of `stage`, e.g. `artifacts("audio_features", "mel")`."""
        s = self.stage(stage)
        if name not in s.artifacts:
            raise KeyError(f"stage '{stage}' has no artifact folder '{name}'; it has {', '.join(s.artifacts)}")
        return self.root / s.folder / name

    def model(self, stage: str, name: str) -> Path:
        s = self.stage(stage)
        if name not in s.models:
            raise KeyError(f"stage '{stage}' trains no model '{name}'; it trains {', '.join(s.models) or 'none'}")
        return self.root / s.models[name]

    def metrics(self, stage: str) -> Path:
        s = self.stage(stage)
        if s.metrics is None:
            raise KeyError(f"stage '{stage}' writes no metrics file")
        return self.root / s.metrics

    def plot(self, stage: str, name: str) -> Path:
        s = self.stage(stage)
        if name not in s.plots:
            raise KeyError(f"stage '{stage}' draws no plot '{name}'; it draws {', '.join(s.plots) or 'none'}")
        return self.root / s.plots[name]

    def report(self, stage: str, name: str) -> Path:
        """A further file `stage` writes outside its folder: `report("evaluate", "page")` -> reports/report.html."""
        s = self.stage(stage)
        if name not in s.reports:
            raise KeyError(f"stage '{stage}' writes no report '{name}'; it writes {', '.join(s.reports) or 'none'}")
        return self.root / s.reports[name]

    def metrics_dir(self) -> Path:
        return self.root / METRICS_DIR

    def outs(self, stage: str) -> list[str]:
        """The DVC outs of `stage` (its folder, its model folders, its further files), relative to the root."""
        s = self.stage(stage)
        return [s.folder, *s.models.values(), *s.reports.values()]

    def generated_manifests(self) -> list[Path]:
        """The `generated.parquet` of every `generate_<family>` stage, in pipeline order (what evaluate scores)."""
        return [self.manifest(name, "generated") for name in self.stages if name.startswith(GENERATE_PREFIX)]

    def inputs(self, stage: str) -> list[str]:
        """The data inputs of `stage` as dvc.yaml lists them: paths relative to the root, params templates as is.

        `"<stage>.<item>"` names a manifest, an artifact folder or a model of that stage; a trailing
        "/" (`"fit3dmm.fits/"`) picks the artifact folder where a manifest has the same name.
        """
        out = []
        for ref in self.stage(stage).reads:
            if ref.startswith("${"):
                out.append(ref)
                continue
            producer, _, item = ref.partition(".")
            s = self.stage(producer)
            if item.endswith("/"):
                path = self.artifacts(producer, item.rstrip("/"))
            elif item in s.manifests:
                path = self.manifest(producer, item)
            elif item in s.artifacts:
                path = self.artifacts(producer, item)
            elif item in s.models:
                path = self.model(producer, item)
            else:
                raise KeyError(f"stage '{stage}' reads '{ref}', but '{producer}' writes no manifest, artifact folder "
                               f"or model '{item}'")
            out.append(path.relative_to(self.root).as_posix())
        return out

    def preprocessing_clips(self) -> pd.DataFrame:
        """`preprocessing_clips` of this catalog's manifests."""
        return preprocessing_clips(self.manifest("ingest", "clips"), self.manifest("faces", "faces"))

    def expert_clips(self) -> pd.DataFrame:
        """`expert_clips` of this catalog's manifests."""
        return expert_clips(self.manifest("ingest", "clips"), self.manifest("faces", "faces"),
                            self.manifest("audio_features", "audio_features"))

    def training_clips(self) -> pd.DataFrame:
        """`training_clips` of this catalog's manifests."""
        return training_clips(self.manifest("ingest", "clips"), self.manifest("faces", "faces"),
                              self.manifest("audio_features", "audio_features"),
                              self.manifest("sync_check", "decisions"))


CATALOG = Catalog()
"""The project's catalog, relative to the current folder (DVC and Prefect run stages from the root)."""


def preprocessing_clips(clips_path: str | Path, faces_path: str | Path) -> pd.DataFrame:
    """Ingest's clips that the faces stage tracked: every column of clips.parquet plus `crop_path`.

    The join fit3dmm (and, through its fits, expressions) runs on; it never waits for the expert.
    Rows sorted by clip_id.

    Raises:
        FileNotFoundError: a manifest is missing (its stage has not run).
    """
    clips = read_manifest(clips_path, "clips")
    faces = read_manifest(faces_path, "faces")
    return clips.merge(faces[["clip_id", "crop_path"]], on="clip_id").sort_values("clip_id", ignore_index=True)


def expert_clips(clips_path: str | Path, faces_path: str | Path, audio_features_path: str | Path) -> pd.DataFrame:
    """The preprocessing join with audio_features' `mel_path`: what train_expert trains on and sync_check scores."""
    audio = read_manifest(audio_features_path, "audio_features")
    return (preprocessing_clips(clips_path, faces_path).merge(audio[["clip_id", "mel_path"]], on="clip_id")
            .sort_values("clip_id", ignore_index=True))


def training_clips(clips_path: str | Path, faces_path: str | Path, audio_features_path: str | Path,
                   decisions_path: str | Path) -> pd.DataFrame:
    """The clips generators train on: `expert_clips` kept by sync_check, with its `mel_path` and shift.

    `mel_path` is sync_check's (audio_features' mel, or its shifted copy for a clip whose audio was
    moved back into sync); `audio_shift_frames` says by how many video frames (a waveform consumer
    applies it x 1/fps itself). Clips sync_check never saw are not in the join.
    """
    decisions = read_manifest(decisions_path, "decisions")
    kept = decisions[decisions.decision == "keep"][["clip_id", "audio_shift_frames", "mel_path"]]
    base = expert_clips(clips_path, faces_path, audio_features_path).drop(columns="mel_path")
    return base.merge(kept, on="clip_id").sort_values("clip_id", ignore_index=True)

