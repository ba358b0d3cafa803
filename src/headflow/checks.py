"""The one way a params or config dataclass reports a bad value (standard library only).

`require(ok, key, value, allowed)` raises `InvalidParam`; the params loader (`headflow.config.from_dict`)
prefixes the block path, so a user reads `train_expert.loop.batch_size: got 0; allowed: >= 1`. It lives
apart from `headflow.config` (YAML, typing machinery) so that the torch-side layers (`headflow.nn`,
`headflow.training`), which import nothing else of headflow, validate in the same style.
"""

from __future__ import annotations

from typing import Any


class InvalidParam(ValueError):
    """Raised by a dataclass's `validate()` (through `require`): `key` (relative to the dataclass,
    dotted for a nested field) holds `value`, which is not among what is `allowed`."""

    def __init__(self, key: str, value: Any, allowed: str):
        super().__init__(f"{key}: got {value!r}; allowed: {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise `InvalidParam(key, value, allowed)` unless `ok`.

    Args:
        ok: the check's outcome.
        key: the field, relative to the dataclass being validated (`"window"`, or `"fit.n_id"` for a
            cross-field check on a nested one); the loader prefixes the block path.
        value: the offending value, shown with repr.
        allowed: what would be accepted, in words (`">= 1"`, `"an odd number > polyorder (2)"`).

    Raises:
        InvalidParam: when `ok` is false.
    """
    if not ok:
        raise InvalidParam(key, value, allowed)
