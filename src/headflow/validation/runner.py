"""Run a manifest's great-expectations suite on a DataFrame and explain failures readably."""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass

import pandas as pd

# great-expectations phones home and draws progress bars by default; neither belongs in a pipeline.
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# Its INFO/WARNING chatter (temporary docs sites, field defaults) is not about our data.
logging.getLogger("great_expectations").setLevel(logging.ERROR)


class ValidationFailed(RuntimeError):
    """A manifest broke one or more expectations of its suite."""

    def __init__(self, manifest: str, failures: list[str]):
        self.manifest = manifest
        self.failures = failures
        lines = "\n".join(f"  - {f}" for f in failures)
        super().__init__(f"manifest '{manifest}' failed {len(failures)} expectation(s):\n{lines}")


@dataclass(frozen=True)
class ValidationReport:
    manifest: str
    n_rows: int
    n_expectations: int
    failures: tuple[str, ...]

    @property
    def success(self) -> bool:
        return not self.failures


def _quiet_gx() -> None:
    """Raise every great-expectations logger to ERROR: some modules set their own logger to INFO on import
    (data_context.types.base: "Created temporary directory ... for ephemeral docs site" on every stage),
    which the package-level level above does not override."""
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith("great_expectations"):
            logging.getLogger(name).setLevel(logging.ERROR)


@functools.lru_cache(maxsize=1)
def _context():
    import great_expectations as gx

    from great_expectations.data_context.types import base  # noqa: F401  (its logger, set to INFO on import)

    _quiet_gx()
    ctx = gx.get_context(mode="ephemeral")
    _quiet_gx()
    try:
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - only cosmetics; validation itself is unaffected
        pass
    return ctx


def _describe_failure(result) -> str:
    cfg = result.expectation_config
    kwargs = {k: v for k, v in cfg.kwargs.items()
              if k not in ("batch_id", "column", "result_format", "condition_parser")}
    cond = kwargs.pop("row_condition", None)
    if isinstance(cond, dict) and {"column", "operator", "parameter"} <= set(cond):
        cond = f"{cond['column'].get('name')} {cond['operator']} {cond['parameter']!r}"
    if cond is not None:
        kwargs["where"] = str(cond)
    col = cfg.kwargs.get("column")
    where = f"column '{col}'" if col else "table"
    r = result.result or {}
    if r.get("unexpected_count") is not None:
        sample = r.get("partial_unexpected_list") or []
        return (f"{cfg.type} on {where} {kwargs}: {r['unexpected_count']} of {r.get('element_count')} rows "
                f"unexpected, e.g. {sample[:3]}")
    if result.exception_info and result.exception_info.get("raised_exception"):
        return f"{cfg.type} on {where}: could not run ({result.exception_info.get('exception_message')})"
    return f"{cfg.type} on {where} {kwargs}: observed {r.get('observed_value')!r}"


def validate_manifest(df: pd.DataFrame, manifest: str, raise_on_failure: bool = True) -> ValidationReport:
    """Validate `df` against the suite registered for `manifest` (see suites.py).

    Raises:
        ValidationFailed: listing each failed expectation, its column and how many rows broke it.
    """
    import great_expectations as gx

    from headflow.validation.suites import build_suite

    ctx = _context()
    suite = build_suite(manifest)
    name = f"{manifest}_{id(df)}"
    asset = ctx.data_sources.add_or_update_pandas("headflow").add_dataframe_asset(name)
    batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df})
    result = batch.validate(gx.ExpectationSuite(name=name, expectations=suite.expectations))
    ctx.data_sources.get("headflow").delete_asset(name)
    failures = tuple(_describe_failure(r) for r in result.results if not r.success)
    report = ValidationReport(manifest, len(df), len(result.results), failures)
    if failures and raise_on_failure:
        raise ValidationFailed(manifest, list(failures))
    return report
