"""Exceptions raised by recgen.

Every error recgen raises on purpose derives from :class:`RecgenError`, so callers can
catch the library's errors without catching unrelated bugs. Input-checking errors also
derive from the builtin they refine (``ValueError``, ``TypeError``, ``KeyError``) so code
written against the builtins keeps working.
"""
from __future__ import annotations

from typing import Any


class RecgenError(Exception):
    """Base class of every error recgen raises deliberately."""


class ValidationError(RecgenError, ValueError):
    """Input data failed validation.

    Attributes
    ----------
    report : recgen.catalog.schema.ValidationReport or None
        Every bad row found, with source file, row number, column and reason. (Not imported
        here: this module is the bottom of the package and imports nothing from recgen.)
    """

    def __init__(self, message: str, report: Any = None):
        super().__init__(message)
        self.report = report


class UnknownIdError(RecgenError, KeyError):
    """An item or user id is not known to the index / profiles."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class NotFittedError(RecgenError, RuntimeError):
    """A model was used before it was fitted / trained."""


class ModelFitError(RecgenError, RuntimeError):
    """Training diverged (NaN/inf loss) or could not run."""


class ArtifactError(RecgenError, OSError):
    """A saved artefact is missing, incomplete, tampered with or of an unknown format."""


class MissingExtraError(RecgenError, ImportError):
    """An optional dependency is not installed; the message holds the pip line to fix it."""


def missing_extra(module: str, pip_line: str, purpose: str) -> MissingExtraError:
    """Build the error raised when an optional module is absent.

    Parameters
    ----------
    module : str
        Import name that failed (``"faiss"``).
    pip_line : str
        The exact command that installs it (``"pip install 'recgen[cpu]'"``).
    purpose : str
        What it is needed for, shown to the user.
    """
    return MissingExtraError(f"{module} is required for {purpose} but is not installed. Fix: {pip_line}")
