"""Packages whose public names load on first use (PEP 562), so that importing a package for one
name does not import every heavy dependency behind the others.

>>> __getattr__, __dir__ = lazy_exports(__name__, {"enrich_frame": "recgen.enrich"})

This module imports nothing from recgen.
"""
from __future__ import annotations

import importlib
import sys
from typing import Any, Callable


def lazy_exports(package: str, table: dict[str, str], *, first: str | None = None
                 ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``table`` maps each name to the module defining it.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    table : dict
        Public name -> full module path.
    first : str, optional
        A module imported before any name is resolved (e.g. the one that checks an optional
        extra, so that every name fails the same way when it is missing).
    """

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        if first is not None:
            importlib.import_module(first)
        value = getattr(importlib.import_module(table[name]), name)
        setattr(sys.modules[package], name, value)  # next time a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(table))

    return __getattr__, __dir__
