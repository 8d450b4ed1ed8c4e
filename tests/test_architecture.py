"""The package's structure, checked: data flows one way and each concept is defined once.

* No module under ``recgen/`` imports ``recgen_adapters`` (the plugin layer), not even
  lazily inside a function: integrations plug in through ``recgen.plugins``.
* ``recgen/errors.py``, ``recgen/ids.py`` and ``recgen/modalities.py`` are the bottom: they
  import nothing from recgen.
* Every other import inside ``recgen`` points down the layers of :data:`LAYERS`
  (catalog -> encoders -> index/profiles -> model/features -> generators -> enrich -> the
  applications), also for imports inside functions.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "recgen"

#: recgen's layers, bottom first; a module may import from its own layer and those below.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "ids", "modalities", "_lazy"),
    ("_io", "_lru", "workdir"),
    ("catalog", "interop"),
    ("encoders",),
    ("index", "profiles"),
    ("model", "features"),
    ("generators",),
    ("enrich",),
    ("report", "evaluation", "datasets", "demo", "doctor", "plugins", "cli"),
)
BOTTOM = ("recgen/errors.py", "recgen/ids.py", "recgen/modalities.py", "recgen/_lazy.py")


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    """Every absolute module name ``path`` imports (top level or inside functions), with its line."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative imports stay inside their own package
                continue
            found.append((node.module or "", node.lineno))
            if node.module == "recgen":  # `from recgen import datasets` names submodules
                found += [(f"recgen.{a.name}", node.lineno) for a in node.names]
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "recgen" or len(parts) == 1:
        return None
    for i, names in enumerate(LAYERS):
        if parts[1] in names:
            return i
    return None


def test_every_module_is_in_a_layer():
    missing = [m for m, _ in _modules() if m != "recgen" and _layer(m) is None]
    assert not missing, f"add these modules to LAYERS in {Path(__file__).name}: {missing}"


@pytest.mark.parametrize("module,path", _modules(), ids=[m for m, _ in _modules()])
def test_core_never_imports_the_adapters(module, path):
    bad = [(name, line) for name, line in _imports(path) if name.split(".")[0] == "recgen_adapters"]
    assert not bad, f"{path.relative_to(ROOT)} imports the plugin layer: {bad}; register through recgen.plugins"


@pytest.mark.parametrize("rel", BOTTOM)
def test_bottom_modules_import_nothing_from_recgen(rel):
    bad = [(name, line) for name, line in _imports(ROOT / rel) if name.split(".")[0] == "recgen"]
    assert not bad, f"{rel} must import nothing from recgen; it imports {bad}"


def test_imports_point_down_the_layers():
    violations = []
    for module, path in _modules():
        mine = _layer(module)
        if mine is None:
            continue
        for name, line in _imports(path):
            theirs = _layer(name)
            if name == "recgen":
                violations.append(f"{path.relative_to(ROOT)}:{line} imports the package root; import the submodule")
            elif theirs is not None and theirs > mine:
                violations.append(f"{path.relative_to(ROOT)}:{line} ({LAYERS[mine][0]} layer) imports {name} "
                                  f"({LAYERS[theirs][0]} layer)")
    assert not violations, "imports against the data flow:\n" + "\n".join(violations)


def test_the_checker_sees_lazy_imports(tmp_path):
    """The checks above would pass vacuously if imports inside functions were missed."""
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from recgen_adapters.service import create_app\n    import recgen.cli\n")
    assert [n for n, _ in _imports(src)] == ["recgen_adapters.service", "recgen.cli"]


def test_plugins_register_the_adapter_commands_and_variant():
    from recgen.evaluation.variants import variant_kinds
    from recgen.plugins import load_plugins

    reg = load_plugins()
    assert not reg.failed, reg.failed
    assert {"enrich", "serve"} <= set(reg.cli_commands)
    assert "als+recgen" in variant_kinds()
