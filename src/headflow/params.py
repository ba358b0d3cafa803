"""Registry of params blocks: block name in params.yaml -> its typed dataclass."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from headflow.align.params import AlignParams
from headflow.audio.params import AudioFeaturesParams
from headflow.config import ConfigError, from_dict, load_params_file
from headflow.demo.params import DemoCorpusParams
from headflow.faces.params import FacesParams
from headflow.ingest.params import IngestParams
from headflow.sync.params import SyncCheckParams
from headflow.fit3dmm.params import Fit3dmmParams
from headflow.expressions.params import ExpressionsParams
from headflow.sync.params import TrainExpertParams
from headflow.evaluate.params import EvaluateParams, TrainJudgeParams

BLOCKS: dict[str, type] = {
    "demo_corpus": DemoCorpusParams,
    "ingest": IngestParams,
    "audio_features": AudioFeaturesParams,
    "align": AlignParams,
    "faces": FacesParams,
    "train_expert": TrainExpertParams,
    "sync_check": SyncCheckParams,
    "fit3dmm": Fit3dmmParams,
    "expressions": ExpressionsParams,
    "train_judge": TrainJudgeParams,
    "evaluate": EvaluateParams,
}


def load_all(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Load and check every block of params.yaml; unknown blocks are an error too."""
    data = load_params_file(path)
    unknown = sorted(set(data) - set(BLOCKS))
    if unknown:
        raise ConfigError(f"{path}: unknown params block(s) {unknown}; known: {sorted(BLOCKS)}")
    return {name: from_dict(cls, data.get(name) or {}, name) for name, cls in BLOCKS.items()}


def load(block: str, path: str | Path = "params.yaml") -> Any:
    """Load one block into its dataclass."""
    if block not in BLOCKS:
        raise ConfigError(f"unknown params block '{block}'; known: {sorted(BLOCKS)}")
    data = load_params_file(path)
    if block not in data:
        raise ConfigError(f"{path}: params block '{block}' is missing")
    return from_dict(BLOCKS[block], data[block] or {}, block)
