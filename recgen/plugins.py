"""The registration point through which plugin packages extend the core.

The core (``recgen``) never imports its integrations. A plugin package (``recgen_adapters``,
or a third-party one) declares an entry point in the group :data:`ENTRY_POINT_GROUP`::

    [project.entry-points."recgen.plugins"]
    adapters = "recgen_adapters.plugin:register"

whose target is a function ``register(registry: PluginRegistry) -> None``. It may add CLI
commands (``recgen enrich``, ``recgen serve`` come this way) and evaluation variant kinds
(``als+recgen``). Plugins are loaded once, on first use (:func:`load_plugins`); a plugin that
fails to load is reported with a warning and skipped, never taking the core down with it.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["ENTRY_POINT_GROUP", "PluginRegistry", "load_plugins", "registry"]

log = logging.getLogger(__name__)

#: Entry-point group scanned by :func:`load_plugins`.
ENTRY_POINT_GROUP = "recgen.plugins"


@dataclass
class PluginRegistry:
    """What plugins have added.

    Attributes
    ----------
    cli_commands : dict
        Command name -> ``(function, typer command options)``; the CLI registers each one.
    loaded : list of str
        Entry points loaded so far (``name = value``).
    failed : dict
        Entry point -> why it could not be loaded.
    """

    cli_commands: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = field(default_factory=dict)
    loaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    def add_cli_command(self, function: Callable[..., Any], *, name: str, **options: Any) -> None:
        """Add a ``recgen NAME`` command (a Typer command function; ``options`` go to ``app.command``).

        Raises
        ------
        ValueError
            ``name`` is taken (by a core command or another plugin).
        """
        if name in self.cli_commands:
            raise ValueError(f"CLI command {name!r} is registered twice ({self.cli_commands[name][0].__module__} "
                             f"and {function.__module__})")
        self.cli_commands[name] = (function, options)

    def add_variant_kind(self, kind: Any) -> None:
        """Add an evaluation variant kind (a :class:`recgen.evaluation.variants.VariantKind`)."""
        from recgen.evaluation.variants import register_variant_kind

        register_variant_kind(kind)


_REGISTRY = PluginRegistry()
_LOCK = threading.RLock()  # a plugin may itself import a module that asks for the plugins
_DONE = False
_LOADING = False


def load_plugins() -> PluginRegistry:
    """Load every ``recgen.plugins`` entry point once; returns the registry (also on later calls)."""
    global _DONE, _LOADING
    with _LOCK:
        if _DONE or _LOADING:  # loaded, or asked again from inside a plugin's own import
            return _REGISTRY
        _LOADING = True
        try:
            from importlib.metadata import entry_points

            from recgen.evaluation.variants import register_variant_kind

            for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                label = f"{ep.name} = {ep.value}"
                scratch = _Scratch()  # all of a plugin, or nothing of it
                try:
                    ep.load()(scratch)
                    clash = set(scratch.cli_commands) & set(_REGISTRY.cli_commands)
                    if clash:
                        raise ValueError(f"CLI command(s) {sorted(clash)} are registered by another plugin")
                    for kind in scratch.variant_kinds:
                        register_variant_kind(kind)
                except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the core
                    _REGISTRY.failed[label] = f"{type(exc).__name__}: {exc}"
                    log.warning("recgen plugin %s could not be loaded: %s", label, exc)
                    continue
                _REGISTRY.cli_commands.update(scratch.cli_commands)
                _REGISTRY.loaded.append(label)
            _DONE = True
        finally:
            _LOADING = False
        return _REGISTRY


class _Scratch(PluginRegistry):
    """What one plugin adds, merged into the registry only when its ``register`` succeeded."""

    def __init__(self) -> None:
        super().__init__()
        self.variant_kinds: list[Any] = []

    def add_variant_kind(self, kind: Any) -> None:
        from recgen.evaluation.variants import VariantKind

        if not isinstance(kind, VariantKind):
            raise TypeError(f"kind must be a VariantKind; got {type(kind).__name__}")
        self.variant_kinds.append(kind)


def registry() -> PluginRegistry:
    """The registry, plugins loaded."""
    return load_plugins()
