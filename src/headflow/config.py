"""Typed, strict loading of `params.yaml` blocks into dataclasses.

Every stage owns one block of `params.yaml` and one dataclass describing it. Loading is strict:
an unknown key or a value of the wrong type is an error that names the key (`ingest.min_duration_s:
expected float, got str 'abc'`), because a typo in a params file that silently falls back to a
default is the kind of irreproducibility headflow exists to remove.

Supported field types: bool, int, float, str, Literal[...], list[T], tuple[T, ...], dict[str, T],
`T | None`, and nested dataclasses. A choice among fixed values is a `Literal`, never a plain str.

Checks beyond types live in one place per dataclass: a `validate()` method that reports with
`require(ok, key, value, allowed)`. `from_dict` calls it on every dataclass it builds (nested ones
included) and names the dotted key: `faces.detect.every: got 0; allowed: >= 1`.

Each field carries its documentation as an attribute docstring (a string right under it);
`field_docs` reads them back for `headflow params`.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import textwrap
import types
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from headflow.checks import InvalidParam, require  # noqa: F401  (re-exported: the params modules' import)

T = TypeVar("T")


class ConfigError(ValueError):
    """A params block that does not match its dataclass."""


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) < 60 else text[:57] + '...'}"


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Check `value` against type `tp`, converting only where it is lossless (int -> float)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None:
            if type(None) in options:
                return None
            raise ConfigError(f"{where}: expected {_typename(tp)}, got null")
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{where}: expected {_typename(tp)}, got {_describe(value)}")
    if origin is Literal:
        if value not in get_args(tp):
            choices = ", ".join(repr(c) for c in get_args(tp))
            raise ConfigError(f"{where}: expected one of {choices}, got {_describe(value)}")
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {_describe(value)}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_describe(value)}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_describe(value)}")
        _, val_tp = get_args(tp) or (str, Any)
        return {str(k): _coerce(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected bool (true/false), got {_describe(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected int, got {_describe(value)}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected float, got {_describe(value)}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected str, got {_describe(value)}")
        return value
    raise TypeError(f"{where}: unsupported field type {tp!r} in a params dataclass")


def _typename(tp: Any) -> str:
    if get_origin(tp) in (Union, types.UnionType):
        return " or ".join(_typename(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from a mapping, rejecting unknown keys and mistyped values.

    Args:
        cls: the params dataclass.
        data: the raw mapping (from YAML).
        where: dotted prefix used in error messages (the params block name).

    Raises:
        ConfigError: naming the offending key, what was expected and what was found.
    """
    prefix = f"{where}." if where else ""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = unknown[0]
        close = difflib.get_close_matches(str(key), list(fields), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise ConfigError(
            f"{prefix}{key}: unknown key{hint}; valid keys of {where or cls.__name__}: "
            + ", ".join(fields)
        )
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], f"{prefix}{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{prefix}{name}: required key is missing")
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        try:
            check()
        except InvalidParam as err:
            raise ConfigError(f"{prefix}{err}") from err
        except ValueError as err:
            # Configs of the torch-side layers (`headflow.training`, `headflow.nn`) cannot import
            # `require` (import rules); their plain ValueError is named by the block path here.
            raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {err}") from err
    return obj


def load_params_file(path: str | Path = "params.yaml") -> dict[str, Any]:
    """Read the whole params file as a mapping (empty file -> {})."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: params file not found (run from the project root)")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of params blocks at the top level")
    return data


def to_dict(obj: Any) -> dict[str, Any]:
    """Dataclass to plain YAML/JSON-friendly mapping (tuples become lists)."""
    def plain(v: Any) -> Any:
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return {k: plain(v) for k, v in dataclasses.asdict(obj).items()}


def replace_dotted(obj: T, dotted: str, value: Any) -> T:
    """A copy of dataclass `obj` with the field at the dotted path set (what `dvc exp run -S block.a.b=v`
    does to params.yaml, on a loaded params object): `replace_dotted(p, "loop.seed", 1)`.

    Raises:
        TypeError: `dotted` names a field the dataclass (or a nested one) does not have.
        AttributeError: a non-final part of the path is not a field.
    """
    head, _, rest = dotted.partition(".")
    if not rest:
        return dataclasses.replace(obj, **{head: value})
    return dataclasses.replace(obj, **{head: replace_dotted(getattr(obj, head), rest, value)})


def field_docs(cls: type) -> dict[str, str]:
    """The attribute docstrings of a dataclass: {field name: its docstring, whitespace folded}.

    A field's docstring is the string literal right under its annotation in the class body (the
    nerfstudio / PEP 257 attribute-docstring convention); fields without one are absent. Fields
    inherited from a base dataclass carry the base's docstrings (a subclass may override them).
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is object or not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef)).body
        for node, after in zip(body, body[1:]):
            if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def type_name(tp: Any) -> str:
    """A field type as params.yaml users read it: `'a' | 'b'`, `int | null`, `list[int]`, a dataclass's name."""
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if origin in (list, tuple, dict):
        args = [a for a in get_args(tp) if a is not Ellipsis]
        return f"{origin.__name__}[{', '.join(type_name(a) for a in args)}]"
    return getattr(tp, "__name__", str(tp))


def describe(cls: type, current: Any, where: str, raw: Any = None) -> list[str]:
    """Lines documenting every field of params dataclass `cls`, nested blocks expanded.

    Each field: `<dotted key>: <type> = <default>  [params.yaml: <value in use>]`, its docstring below;
    a nested dataclass gets a header line and its fields one level deeper. With `raw`, a field that
    params.yaml does not list reads `[not in params.yaml: default <value> in use; dvc exp run -S +<key>=...]`:
    DVC refuses `-S key=value` for a key absent from the file ("Could not override") and needs the `+`.

    Args:
        cls: the params dataclass.
        current: an instance holding the values in use (from params.yaml), or None when unknown.
        where: the block's dotted name (`faces`, `faces.detect`).
        raw: the block's mapping as params.yaml writes it (None: do not mark absent keys).
    """
    hints, docs = get_type_hints(cls), field_docs(cls)
    depth = where.count(".") + 1
    pad = "  " * depth
    lines = []
    for f in dataclasses.fields(cls):
        key, tp = f"{where}.{f.name}", hints[f.name]
        doc = docs.get(f.name) or (tp.__doc__ if dataclasses.is_dataclass(tp) else None) or ""
        value = getattr(current, f.name) if current is not None else None
        listed = isinstance(raw, dict) and f.name in raw
        if dataclasses.is_dataclass(tp):
            lines.append(f"{pad}{key}: {tp.__name__}")
            lines.extend(textwrap.wrap(doc, 100, initial_indent=pad + "    ", subsequent_indent=pad + "    "))
            lines.extend(describe(tp, value, key, (raw.get(f.name) or {}) if isinstance(raw, dict) else None))
            continue
        if f.default is not dataclasses.MISSING:
            default = repr(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            default = repr(f.default_factory())
        else:
            default = "(required)"
        now = "" if current is None else f"  [params.yaml: {value!r}]"
        if current is not None and raw is not None and not listed:
            now = f"  [not in params.yaml: default {value!r} in use; dvc exp run -S +{key}=...]"
        lines.append(f"{pad}{key}: {type_name(tp)} = {default}{now}")
        lines.extend(textwrap.wrap(doc, 100, initial_indent=pad + "    ", subsequent_indent=pad + "    "))
    return lines


__all__ = ["ConfigError", "InvalidParam", "describe", "field_docs", "from_dict", "load_params_file", "require",
           "to_dict", "type_name"]
