"""The generator families: `FAMILIES` maps a family's name to its params class, train and generate entry
points, tiny params set and a one-line description (docs/DESIGN.md, "Generators").

Each family lives in `generators/<family>/` (params.py, data.py, model.py, losses.py, train.py,
generate.py) and imports no other family. Importing this registry imports only the params modules
(torch-free); `train` and `generate` import their modules on first call.

    from headflow.generators import FAMILIES
    fam = FAMILIES["lipsync"]
    fam.train(fam.params(), ...)          # the family's train_<family> stage function
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _lazy(target: str) -> Callable[..., Any]:
    """A function that imports "module:name" on its first call and forwards to it."""
    module, _, name = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__, call.__qualname__ = name, name
    call.__doc__ = f"Calls {target} (imported on first use)."
    call.target = target  # type: ignore[attr-defined]
    return call


@dataclass(frozen=True)
class Family:
    """One generator family's entry points."""

    name: str
    params: type
    """The params dataclass of its train stage (the `train_<family>` block)."""
    train: Callable[..., Any]
    """Its train stage function, `run_stage(params, <paths as keywords>, progress=...)`."""
    generate: Callable[..., Any]
    """Its generate stage function (writes videos and `generated.parquet`)."""
    tiny: Callable[[], Any]
    """The tiny params set the shared per-family test trains for two steps."""
    description: str
    extra_training: tuple[tuple[str, str, str], ...] = ()
    """Training stages besides `train_<name>`, as (stage, "module:function", "before" | "after"
    `train_<name>`): StyleTalk's frozen discriminators come before, Head2HeadFS's fine-tuning after."""

    def training_stages(self) -> list[str]:
        """The family's DVC training stages in pipeline order (`train_<name>` and its extra ones)."""
        before = [s for s, _, where in self.extra_training if where == "before"]
        after = [s for s, _, where in self.extra_training if where == "after"]
        return [*before, f"train_{self.name}", *after]


def _lipsync() -> Family:
    from headflow.generators.lipsync import params

    return Family("lipsync", params.LipsyncParams, _lazy("headflow.generators.lipsync.train:run_stage"),
                  _lazy("headflow.generators.lipsync.generate:run_stage"), params.tiny_params,
                  "reference-attention lip-sync U-Net (Wav2Lip lineage): masked 96x96 face + KMeans references "
                  "+ mel window -> mouth region and blending mask")


def _stylemap() -> Family:
    from headflow.generators.stylemap import params

    return Family("stylemap", params.StylemapParams, _lazy("headflow.generators.stylemap.train:run_stage"),
                  _lazy("headflow.generators.stylemap.generate:run_stage"), params.tiny_params,
                  "Style Mapping (face-vid2vid lineage): 3D keypoints + 66-bin pose/expression -> first-order warps "
                  "of a 3D feature volume -> the neutral face in the style reference's pose and expression")


def _head2headfs() -> Family:
    from headflow.generators.head2headfs import params

    return Family("head2headfs", params.Head2HeadFSParams, _lazy("headflow.generators.head2headfs.train:run_stage"),
                  _lazy("headflow.generators.head2headfs.generate:run_stage"), params.tiny_params,
                  "Head2HeadFS: NMFC sequence + identity embedding (AdaIN) -> sequential frame and mask renderer, "
                  "multi-person initialisation then few-shot fine-tuning (AdaIN -> IN) for head reenactment",
                  extra_training=(("finetune_head2headfs", "headflow.generators.head2headfs.finetune:run_stage",
                                   "after"),))


def _styletalk() -> Family:
    from headflow.generators.styletalk import params

    return Family("styletalk", params.StyleTalkParams, _lazy("headflow.generators.styletalk.train:run_stage"),
                  _lazy("headflow.generators.styletalk.generate:run_stage"), params.tiny_params,
                  "StyleTalk: phoneme windows + a style clip -> 3DMM expression sequences (style-aware adaptive "
                  "transformer decoders), rendered as NMFC and a shaded mesh",
                  extra_training=(("train_styletalk_disc", "headflow.generators.styletalk.train:run_disc_stage",
                                   "before"),))


def _discohead() -> Family:
    from headflow.generators.discohead import params

    return Family("discohead", params.DisCoHeadParams, _lazy("headflow.generators.discohead.train:run_stage"),
                  _lazy("headflow.generators.discohead.generate:run_stage"), params.tiny_params,
                  "DisCoHead: head pose through one affine/TPS transformation of a driver, mouth from a 400 ms audio "
                  "window, eyes from an eye-masked driver, by weight modulation (256x256 aligned crops)")


FAMILIES: dict[str, Family] = {f.name: f for f in (_lipsync(), _discohead(), _stylemap(), _styletalk(), _head2headfs())}
"""Family name -> `Family`, in the pipeline's (dvc.yaml's) order."""

__all__ = ["FAMILIES", "Family"]
