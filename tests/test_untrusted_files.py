"""Untrusted files (issue 6): no pickle in any load path, torch weights only through
safetensors or ``weights_only=True``, and every saved artefact rejects a tampered file or an
edited manifest with a clear error."""
from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from recgen.errors import ArtifactError

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted([*REPO.joinpath("recgen").rglob("*.py"), *REPO.joinpath("adapters").rglob("*.py")])


def _call_name(node: ast.Call) -> str:
    f = node.func
    parts = []
    while isinstance(f, ast.Attribute):
        parts.append(f.attr)
        f = f.value
    if isinstance(f, ast.Name):
        parts.append(f.id)
    return ".".join(reversed(parts))


def _kw(node: ast.Call, name: str):
    for k in node.keywords:
        if k.arg == name and isinstance(k.value, ast.Constant):
            return k.value.value
    return None


def unsafe_loads(source: str, filename: str) -> list[str]:
    """Every call or import in ``source`` that could unpickle data."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
            for n in names:
                if n and n.split(".")[0] in {"pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}:
                    found.append(f"{filename}:{node.lineno} imports {n}")
        if not isinstance(node, ast.Call):
            continue
        name = _call_name(node)
        last = name.rsplit(".", 1)[-1]
        if last in {"read_pickle", "loads_pickle", "unpickle"} or name in {"joblib.load", "pickle.load", "pickle.loads"}:
            found.append(f"{filename}:{node.lineno} calls {name}")
        if name in {"torch.load"} and _kw(node, "weights_only") is not True:
            found.append(f"{filename}:{node.lineno} calls torch.load without weights_only=True")
        if name in {"np.load", "numpy.load"} and _kw(node, "allow_pickle") is not False:
            found.append(f"{filename}:{node.lineno} calls {name} without allow_pickle=False")
    return found


def test_the_scanner_finds_what_it_looks_for():
    bad = ("import pickle\nimport torch, numpy as np\ntorch.load('w')\nnp.load('a.npy')\n"
           "import pandas as pd\npd.read_pickle('x')\ntorch.load('w', weights_only=False)\n")
    assert len(unsafe_loads(bad, "bad.py")) == 5
    good = "import torch, numpy as np\ntorch.load('w', weights_only=True)\nnp.load('a', allow_pickle=False)\n"
    assert unsafe_loads(good, "good.py") == []


def test_no_pickle_in_any_load_path():
    assert len(SOURCES) > 30
    found = [f for p in SOURCES for f in unsafe_loads(p.read_text(encoding="utf-8"), str(p.relative_to(REPO)))]
    assert found == []


# -- every saved artefact of a working directory ----------------------------------------------

def _load_all(workdir: Path) -> None:
    from recgen import Enricher

    Enricher.load(workdir)  # model + generators, every manifest verified


def _artefact_dirs(workdir: Path) -> list[Path]:
    return sorted(p.parent for p in workdir.rglob("manifest.json"))


@pytest.fixture()
def work(saved_workdir, tmp_path):
    dst = tmp_path / "work"
    shutil.copytree(saved_workdir, dst)
    return dst


def test_every_artefact_kind_is_covered(saved_workdir):
    kinds = {json.loads((d / "manifest.json").read_text())["kind"] for d in _artefact_dirs(saved_workdir)}
    # model, its space/projection/indexes, and the generators: all go through the same manifest checks
    assert {"recgen-model", "item-index"} <= kinds and len(kinds) >= 5, kinds


def test_tampered_weights_or_data_file_rejected(work):
    """Flip one byte in the largest file of each artefact: the load names the file and the cause."""
    _load_all(work)  # sanity: the untouched copy loads
    for d in _artefact_dirs(work):
        target = max((p for p in d.iterdir() if p.is_file() and p.name != "manifest.json"),
                     key=lambda p: p.stat().st_size, default=None)
        if target is None:
            continue
        original = target.read_bytes()
        data = bytearray(original)
        data[len(data) // 2] ^= 0x01
        target.write_bytes(bytes(data))
        with pytest.raises(ArtifactError, match=rf"{target.name} does not match the checksum"):
            _load_all(work)
        target.write_bytes(original)
    _load_all(work)


def test_edited_manifest_rejected(work):
    """A manifest edited by hand (config changed, checksums left) is refused before anything is read."""
    for d in _artefact_dirs(work):
        path = d / "manifest.json"
        original = path.read_text()
        manifest = json.loads(original)
        manifest["config"] = {**manifest["config"], "edited": True}
        path.write_text(json.dumps(manifest))
        # a top-level manifest is caught by its own digest; a nested one also by its parent's checksum
        expected = "was edited or corrupted" if d.parent == work else r"manifest.json does not match the checksum"
        with pytest.raises(ArtifactError, match=expected):
            _load_all(work)
        path.write_text(original)


def test_manifest_without_digest_still_loads_with_a_warning(work, caplog):
    """Saves from before manifests had a digest still load (their file checksums are checked)."""
    from recgen._io import sha256_file

    nested = work / "model" / "space"
    path = nested / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["digest"]
    path.write_text(json.dumps(manifest))
    top = work / "model" / "manifest.json"
    top_m = json.loads(top.read_text())
    top_m["files"]["space/manifest.json"] = sha256_file(path)
    del top_m["digest"]
    top.write_text(json.dumps(top_m))
    with caplog.at_level("WARNING", logger="recgen._io"):
        _load_all(work)
    assert "has no digest" in caplog.text


def test_truncated_and_missing_files_rejected(work):
    d = work / "model"
    target = max((p for p in d.rglob("*") if p.is_file() and p.name != "manifest.json"), key=lambda p: p.stat().st_size)
    target.write_bytes(target.read_bytes()[:10])
    with pytest.raises(ArtifactError, match="does not match the checksum"):
        _load_all(work)
    target.unlink()
    with pytest.raises(ArtifactError, match="is missing"):
        _load_all(work)


def test_symlink_out_of_the_directory_rejected(work, tmp_path):
    """A listed file replaced by a symlink to a file outside the artefact (same bytes) is refused."""
    d = work / "model"
    target = next(p for p in sorted(d.iterdir()) if p.is_file() and p.suffix == ".npy")
    outside = tmp_path / "outside.npy"
    shutil.copy(target, outside)
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(ArtifactError, match="outside"):
        _load_all(work)


def _resign(path: Path, manifest: dict) -> None:
    """Write ``manifest`` with a recomputed digest: what an attacker who can write the folder does."""
    from recgen._io import _manifest_digest

    manifest = {k: v for k, v in manifest.items() if k != "digest"}
    manifest["digest"] = _manifest_digest(manifest)
    path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("field", ["modalities", "indexes"])
def test_manifest_names_cannot_point_outside_the_model(work, tmp_path, field):
    """Regression (issue 14, item 5): names in a model manifest's config became file names unchecked,
    so a crafted manifest loaded an .npy from outside the model folder that no checksum covers."""
    import numpy as np

    from recgen.model import Recgen

    outside = tmp_path / "evil"
    outside.mkdir()
    np.save(outside / "vec_x.npy", np.zeros((3, 4), np.float32))
    path = work / "model" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["config"][field] = [*manifest["config"][field], "../../evil/x" if field == "modalities" else "../evil"]
    _resign(path, manifest)
    with pytest.raises(ArtifactError, match=f"{field}"):
        Recgen.load(work / "model")


def test_deeply_nested_manifest_is_an_artefact_error(work):
    """Regression (issue 14, item 5): a 100k-deep manifest.json crashed with RecursionError."""
    from recgen.model import Recgen

    (work / "model" / "manifest.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ArtifactError, match="nested too deeply|not valid JSON"):
        Recgen.load(work / "model")
