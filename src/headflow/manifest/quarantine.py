"""Rejections as data: the quarantine table and the accounting invariant.

A stage collects accepted rows and a `Quarantine`; at the end `check_accounting` asserts
rows in = rows out + rows quarantined, and `Quarantine.enforce` fails the stage only when the
rejected fraction exceeds its `max_reject_fraction` param.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from headflow.manifest.io import write_manifest


class Rejected(Exception):
    """Raised by per-clip work to send a clip to quarantine with a reason code."""

    def __init__(self, reason_code: str, message: str):
        super().__init__(f"{reason_code}: {message}")
        self.reason_code = reason_code
        self.message = message


class AccountingError(AssertionError):
    """Rows were lost or duplicated between a stage's input and its outputs."""


class TooManyRejected(RuntimeError):
    """The rejected fraction exceeds the stage's `max_reject_fraction`."""


@dataclass
class Quarantine:
    """The rejected inputs of one stage run."""

    stage: str
    rows: list[dict] = field(default_factory=list)

    def add(self, clip_id: str, reason_code: str, message: str, source_path: str = "") -> None:
        self.rows.append({"clip_id": clip_id, "stage": self.stage, "reason_code": reason_code,
                          "message": message, "source_path": source_path})

    def __len__(self) -> int:
        return len(self.rows)

    def reasons(self) -> Counter:
        return Counter(r["reason_code"] for r in self.rows)

    def frame(self) -> pd.DataFrame:
        cols = ["clip_id", "stage", "reason_code", "message", "source_path"]
        return pd.DataFrame(self.rows, columns=cols).sort_values(["clip_id", "reason_code"], ignore_index=True)

    def write(self, path: str | Path) -> None:
        """Write quarantine.parquet (always, even when empty, so downstream deps exist)."""
        write_manifest(self.frame(), path, kind="quarantine")

    def enforce(self, n_in: int, max_reject_fraction: float) -> None:
        """Fail the stage when too much was rejected; the message lists the top reasons."""
        if n_in and len(self) / n_in > max_reject_fraction:
            top = ", ".join(f"{k}: {v}" for k, v in self.reasons().most_common(5))
            raise TooManyRejected(
                f"stage '{self.stage}' rejected {len(self)} of {n_in} inputs "
                f"({len(self) / n_in:.0%} > max_reject_fraction {max_reject_fraction:.0%}); "
                f"reasons: {top}. See the quarantine table for each clip's message."
            )


def check_accounting(ids_in: list[str], ids_out: list[str], ids_quarantined: list[str], stage: str) -> None:
    """Assert every input is either in the output or in quarantine, exactly once."""
    seen = Counter(ids_out) + Counter(ids_quarantined)
    missing = [i for i in ids_in if i not in seen]
    dup = [i for i, n in seen.items() if n > 1]
    extra = [i for i in seen if i not in set(ids_in)]
    if len(ids_in) != len(ids_out) + len(ids_quarantined) or missing or dup or extra:
        raise AccountingError(
            f"stage '{stage}': rows in ({len(ids_in)}) != rows out ({len(ids_out)}) + quarantined "
            f"({len(ids_quarantined)}); lost {missing[:5]}, duplicated {dup[:5]}, unexpected {extra[:5]}"
        )
