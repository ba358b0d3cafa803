"""great-expectations suites kept in code, one per manifest, run by every stage on what it writes."""

from headflow.validation.runner import ValidationFailed, validate_manifest
from headflow.validation.suites import SUITES

__all__ = ["SUITES", "ValidationFailed", "validate_manifest"]
