"""Registry of params blocks (block name in params.yaml -> its typed dataclass) and the one loader.

Every stage entry point, Prefect task, benchmark and the CLI loads its block with `load(block)`;
`from_dict` (headflow.config) is the primitive underneath, for mappings that do not come from a file.
The classes are named, not imported, here: `load("ingest")` imports only `headflow.ingest.params`, so
a stage's entry point imports its own params module and no other stage's (its DVC deps stay precise).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from headflow.config import ConfigError, from_dict, load_params_file

BLOCKS: dict[str, str] = {
    "demo_corpus": "headflow.demo.params:DemoCorpusParams",
    "ingest": "headflow.ingest.params:IngestParams",
    "audio_features": "headflow.audio.params:AudioFeaturesParams",
    "align": "headflow.align.params:AlignParams",
    "faces": "headflow.faces.params:FacesParams",
    "shards": "headflow.shards.params:ShardsParams",
    "train_expert": "headflow.sync.params:TrainExpertParams",
    "sync_check": "headflow.sync.params:SyncCheckParams",
    "fit3dmm": "headflow.fit3dmm.params:Fit3dmmParams",
    "expressions": "headflow.expressions.params:ExpressionsParams",
    "shard_labels": "headflow.shards.params:ShardLabelsParams",
    "train_judge": "headflow.sync.params:TrainExpertParams",
    "train_lipsync": "headflow.generators.lipsync.params:LipsyncParams",
    "generate_lipsync": "headflow.generators.lipsync.params:GenerateLipsyncParams",
    "train_discohead": "headflow.generators.discohead.params:DisCoHeadParams",
    "generate_discohead": "headflow.generators.discohead.params:GenerateDisCoHeadParams",
    "train_stylemap": "headflow.generators.stylemap.params:StylemapParams",
    "generate_stylemap": "headflow.generators.stylemap.params:GenerateStylemapParams",
    # --- styletalk (issue 18) ---
    "train_styletalk_disc": "headflow.generators.styletalk.params:DiscParams",
    "train_styletalk": "headflow.generators.styletalk.params:StyleTalkParams",
    "generate_styletalk": "headflow.generators.styletalk.params:GenerateStyleTalkParams",
    # --- end styletalk ---
    "train_head2headfs": "headflow.generators.head2headfs.params:Head2HeadFSParams",
    "finetune_head2headfs": "headflow.generators.head2headfs.params:FinetuneHead2HeadFSParams",
    "generate_head2headfs": "headflow.generators.head2headfs.params:GenerateHead2HeadFSParams",
    "evaluate": "headflow.evaluate.params:EvaluateParams",
}
"""Block name -> "module:Class" of its dataclass, in dvc.yaml's stage order."""


def block_class(block: str) -> type:
    """The dataclass of params block `block`.

    Raises:
        ConfigError: no such block.
    """
    if block not in BLOCKS:
        raise ConfigError(f"unknown params block '{block}'; known: {', '.join(BLOCKS)}")
    module, _, name = BLOCKS[block].partition(":")
    return getattr(importlib.import_module(module), name)


def load_all(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Load and check every block of params.yaml; unknown blocks are an error too."""
    data = load_params_file(path)
    unknown = sorted(set(data) - set(BLOCKS))
    if unknown:
        raise ConfigError(f"{path}: unknown params block(s) {unknown}; known: {', '.join(BLOCKS)}")
    return {name: from_dict(block_class(name), data.get(name) or {}, name) for name in BLOCKS}


def load(block: str, path: str | Path = "params.yaml") -> Any:
    """Load one block of params.yaml into its dataclass (types checked, `validate()` run).

    Raises:
        ConfigError: unknown block, missing block, or a key that is unknown, mistyped or out of range
            (the message names `block.key`, the value and what is allowed).
    """
    cls = block_class(block)
    data = load_params_file(path)
    if block not in data:
        raise ConfigError(f"{path}: params block '{block}' is missing (expected keys of {cls.__name__})")
    return from_dict(cls, data[block] or {}, block)
