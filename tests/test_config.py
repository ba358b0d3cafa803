"""Typed params: strict loading and the real params.yaml."""

import ast
import dataclasses
import inspect
import textwrap
from dataclasses import dataclass, field
from typing import Literal, get_args, get_type_hints

import pytest

from headflow import params
from headflow.config import ConfigError, field_docs, from_dict


@dataclass
class Inner:
    k: int = 1


@dataclass
class Block:
    rate: float = 1.0
    name: str = "x"
    flag: bool = False
    mode: Literal["a", "b"] = "a"
    sizes: list[int] = field(default_factory=list)
    opt: int | None = None
    inner: Inner = field(default_factory=Inner)


def test_real_params_yaml_loads_every_block(project_root):
    blocks = params.load_all(project_root / "params.yaml")
    assert set(blocks) == set(params.BLOCKS)
    assert blocks["demo_corpus"].n_clips >= 24
    assert len(blocks["demo_corpus"].identities) >= 6
    assert blocks["ingest"].fps == 25 and blocks["ingest"].sample_rate == 16000


def test_values_are_typed_and_int_widens_to_float():
    b = from_dict(Block, {"rate": 2, "sizes": [1, 2], "opt": None, "inner": {"k": 3}}, "blk")
    assert b.rate == 2.0 and isinstance(b.rate, float)
    assert b.sizes == [1, 2] and b.inner.k == 3


@pytest.mark.parametrize("data, message", [
    ({"rat": 1.0}, "blk.rat: unknown key (did you mean 'rate'?)"),
    ({"rate": "fast"}, "blk.rate: expected float, got str"),
    ({"flag": 1}, "blk.flag: expected bool"),
    ({"mode": "c"}, "blk.mode: expected one of 'a', 'b'"),
    ({"sizes": [1, "2"]}, "blk.sizes[1]: expected int"),
    ({"inner": {"j": 1}}, "blk.inner.j: unknown key"),
    ({"name": 3}, "blk.name: expected str"),
])
def test_unknown_or_mistyped_keys_name_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(Block, data, "blk")
    assert message in str(err.value)


@pytest.mark.parametrize("block, text, message", [
    ("ingest", "min_duration_s: 20.0\n  max_duration_s: 10.0",
     "ingest.min_duration_s: got 20.0; allowed: below max_duration_s (10.0)"),
    # a nested block's own validate(): the loader adds the whole dotted path
    ("faces", "detect: {every: 0}", "faces.detect.every: got 0; allowed: >= 1"),
    ("faces", "smooth: {window: 8}", "faces.smooth.window: got 8; allowed: an odd number > polyorder (2)"),
    ("ingest", "split: {val: 0.5, test: 0.5}", "ingest.split.test: got 0.5; allowed: >= 0, with val (0.5) + test < 1"),
    # a cross-field check in the parent names the nested key
    ("fit3dmm", "fit: {n_id: 3}", "fit3dmm.fit.n_id: got 3; allowed: null only: set fit3dmm.n_id instead"),
    ("sync_check", "max_abs_offset: 9\n  max_offset: 5",
     "sync_check.max_abs_offset: got 9; allowed: an offset in [0, max_offset (5)]"),
    ("demo_corpus", "identities: [nobody]", "demo_corpus.identities: got ['nobody']; allowed: portraits among"),
])
def test_validate_names_the_dotted_key_the_value_and_what_is_allowed(tmp_path, block, text, message):
    p = tmp_path / "params.yaml"
    p.write_text(f"{block}:\n  {text}\n")
    with pytest.raises(ConfigError) as err:
        params.load(block, p)
    assert str(err.value).startswith(message), str(err.value)


def _dataclasses_of(cls: type) -> list[type]:
    """cls and every dataclass nested in its fields."""
    out = [cls]
    for f in dataclasses.fields(cls):
        tp = get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            out += _dataclasses_of(tp)
    return out


def _params_classes() -> list[type]:
    return list(dict.fromkeys(c for name in params.BLOCKS for c in _dataclasses_of(params.block_class(name))))


# str fields that are open text (paths, names, codes), not a choice among fixed values
FREE_TEXT = {
    "ingest.root", "ingest.file_list", "ingest.transcripts_json", "ingest.extensions",
    "ingest.transcript_encodings",           # Python codec names: checked with codecs.lookup in validate()
    "demo_corpus.identities",                # portraits: checked against PORTRAITS in validate()
    "demo_corpus.voices",                    # espeak-ng voice names
    "align.language", "align.dictionary",    # an espeak language code; a file path
    "align.mfa.command", "align.mfa.dictionary", "align.mfa.acoustic_model", "align.mfa.extra_args",
    "sync_check.expert",                     # "trained" or a checkpoint path
    "train_lipsync.expert",                  # "trained", "none" or a checkpoint path
    "train_lipsync.loss.d_augment",          # comma-separated DiffAugment ops, checked in validate()
    "generate_lipsync.checkpoint",           # "trained" or the path of an exported generator
    "generate_lipsync.variant",              # a name for generated.parquet's variant column
    "generate_stylemap.checkpoint",          # "trained" or the path of an exported generator
    "generate_stylemap.variant",             # a name for generated.parquet's variant column
    "fit3dmm.model",                         # "<kind>:<path>" spec, parsed by headflow.morphable.registry
    "fit3dmm.truth_root",
    "generate_discohead.checkpoint",         # "trained" or the path of an exported generator
    "train_discohead.variant",               # a name for generated.parquet's variant column ("" = derived)
    # --- styletalk (issue 18) ---
    "train_styletalk_disc.morphable_model", "train_styletalk.morphable_model",   # fit3dmm.model specs
    "generate_styletalk.morphable_model",
    "train_styletalk.discriminators",        # "trained", "none" or a checkpoint path
    "generate_styletalk.checkpoint",         # "trained" or the path of an exported model
    "generate_styletalk.recognizer_checkpoint",  # "trained" or the path of an exported phone recogniser
    "generate_styletalk.variant",            # a name for generated.parquet's variant column
    # --- end styletalk ---
    "finetune_head2headfs.targets",          # speaker ids, checked against the split at run time
    "generate_head2headfs.variant",          # a name for generated.parquet's variant column
    "generate_head2headfs.morphable_model",  # a fit3dmm.model spec
}
# TrainExpertParams belongs to the training-harness change, which turns these into Literals
PENDING_LITERAL = {"train_expert.face_input", "train_expert.audio_input", "train_expert.face_centre",
                   "train_expert.audio_centre", "train_expert.lr_schedule"}


def _str_fields(cls: type, where: str) -> list[str]:
    out = []
    for f in dataclasses.fields(cls):
        tp = get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp):
            out += _str_fields(tp, f"{where}.{f.name}")
        elif str in {tp, *get_args(tp), *(a for arg in get_args(tp) for a in get_args(arg))}:
            out.append(f"{where}.{f.name}")
    return out


def test_every_choice_field_is_a_literal():
    found = {key for name in params.BLOCKS for key in _str_fields(params.block_class(name), name)}
    unexplained = sorted(found - FREE_TEXT - PENDING_LITERAL)
    assert not unexplained, (f"{unexplained}: a choice among fixed values must be a Literal; open text "
                             "(paths, names) goes in FREE_TEXT with a comment")
    assert not FREE_TEXT - found, "FREE_TEXT lists fields that are gone or no longer str"


def test_str_field_finder_sees_plain_optional_and_list_str():
    @dataclass
    class Choice:
        mode: str = "a"
        maybe: str | None = None
        many: list[str] = field(default_factory=list)
        ok: Literal["a", "b"] = "a"
        n: int = 0

    assert _str_fields(Choice, "blk") == ["blk.mode", "blk.maybe", "blk.many"]


def test_params_dataclasses_validate_in_one_style():
    # checks live in validate() and report through config.require (the loader names the key);
    # no __post_init__ checks (they run on every construction, outside the loader's error naming)
    for cls in _params_classes():
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
        methods = {n.name: n for n in tree.body[0].body if isinstance(n, ast.FunctionDef)}
        assert "__post_init__" not in methods, f"{cls.__name__}: validate in validate(), not __post_init__"
        if "validate" in methods:
            raises = [n for n in ast.walk(methods["validate"]) if isinstance(n, ast.Raise)]
            assert not raises, f"{cls.__name__}.validate raises directly; use headflow.config.require"


def test_every_params_field_has_a_docstring():
    missing = [f"{cls.__name__}.{f.name}" for cls in _params_classes() for f in dataclasses.fields(cls)
               if f.name not in field_docs(cls) and not dataclasses.is_dataclass(get_type_hints(cls)[f.name])]
    assert not missing, f"fields without an attribute docstring (headflow params prints it): {missing}"


def test_unknown_block_is_an_error(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("ingest: {}\ndemo_corpus: {}\ningset: {}\n")
    with pytest.raises(ConfigError, match="unknown params block"):
        params.load_all(p)


def test_replace_dotted_sets_a_nested_field_and_names_unknown_ones():
    from headflow.config import replace_dotted
    from headflow.generators.lipsync.params import tiny_params

    p = tiny_params()
    q = replace_dotted(replace_dotted(p, "loop.seed", 7), "loss.sync_start_l1", 0.085)
    assert (q.loop.seed, q.loss.sync_start_l1) == (7, 0.085)
    assert (p.loop.seed, p.loss.sync_start_l1) != (7, 0.085)          # a copy: the original is unchanged
    with pytest.raises(TypeError):
        replace_dotted(p, "loop.no_such_field", 1)
