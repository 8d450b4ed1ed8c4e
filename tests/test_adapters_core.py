"""The shared enrichment core (Enricher) and the scikit-learn transformer."""
from __future__ import annotations

import io
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from recgen.errors import ArtifactError, NotFittedError
from recgen import Enricher
from recgen_adapters import RecgenFeatures
from recgen.workdir import resolve_directory

FEATS = ["recgen_sim_fused", "recgen_sim_text", "recgen_sim_image", "recgen_sim_review",
         "recgen_known_user", "recgen_known_item"]


@pytest.fixture(scope="module")
def enricher(saved_workdir, tmp_path_factory) -> Enricher:
    return Enricher.load(saved_workdir, preview_dir=tmp_path_factory.mktemp("previews"))


def test_resolve_directory_accepts_workdir_or_model_dir(saved_workdir, tmp_path):
    a = resolve_directory(saved_workdir)
    b = resolve_directory(saved_workdir / "model")
    assert a == b and a.generators == saved_workdir / "generators"
    assert resolve_directory(saved_workdir, generators=False).generators is None
    with pytest.raises(ArtifactError, match="recgen index"):
        resolve_directory(tmp_path)
    with pytest.raises(ArtifactError, match="manifest.json"):
        resolve_directory(saved_workdir, generators=tmp_path)


def test_features_equal_the_model_and_keep_rows(enricher, candidates):
    out = enricher.enrich(candidates)
    assert list(out.columns) == list(candidates.columns) + FEATS
    assert out.index.equals(candidates.index) and len(out) == len(candidates)
    pd.testing.assert_frame_equal(out, enricher.model.enrich(candidates))
    assert not out.loc[3, "recgen_known_user"] and np.isnan(out.loc[3, "recgen_sim_fused"])
    assert not out.loc[4, "recgen_known_item"]
    known = out["recgen_known_user"] & out["recgen_known_item"]
    assert out.loc[known, "recgen_sim_fused"].notna().all()
    assert out["recgen_sim_fused"].dtype == np.float32
    assert list(candidates.columns) == ["user_id", "item_id", "cf_score", "rank"]  # input untouched


def test_blurbs_and_previews_bytes(enricher, candidates):
    head = candidates.head(12)
    out = enricher.enrich(head, features=False, blurbs=True, previews=True, preview_format="bytes")
    assert list(out.columns) == list(head.columns) + ["recgen_blurb", "recgen_preview"]
    assert pd.isna(out.loc[4, "recgen_blurb"]) and pd.isna(out.loc[4, "recgen_preview"])  # unknown item
    ok = out.drop(index=4)
    assert ok["recgen_blurb"].map(lambda s: isinstance(s, str) and len(s) > 10).all()
    img = Image.open(io.BytesIO(ok["recgen_preview"].iloc[0]))
    assert img.format == "PNG" and img.size == (32, 32)
    # duplicate pairs (rows 5 and 6) get identical content; unknown user (row 3) the neutral version
    assert out.loc[5, "recgen_blurb"] == out.loc[6, "recgen_blurb"]
    assert out.loc[5, "recgen_preview"] == out.loc[6, "recgen_preview"]
    neutral = enricher.enrich(head.assign(user_id=None).loc[[3]], features=False, blurbs=True)
    assert out.loc[3, "recgen_blurb"] == neutral.loc[3, "recgen_blurb"]
    again = enricher.enrich(head, features=False, blurbs=True, previews=True, preview_format="bytes")
    pd.testing.assert_frame_equal(out, again)


def test_previews_as_content_addressed_files(enricher, candidates):
    head = candidates.head(8)
    out = enricher.enrich(head, features=False, previews=True)
    paths = out["recgen_preview"].dropna()
    assert len(paths) == 7
    for p in paths:
        p = Path(p)
        assert p.is_file() and p.resolve().is_relative_to(enricher.preview_dir.resolve())
        assert "NO-ITEM" not in p.name and p.suffix == ".png"
    png = enricher.preview_png(head.loc[0, "user_id"], head.loc[0, "item_id"])
    assert Path(out.loc[0, "recgen_preview"]).read_bytes() == png


def test_enrich_errors_name_the_fix(enricher, saved_workdir, candidates):
    with pytest.raises(TypeError, match="DataFrame"):
        enricher.enrich(candidates.to_dict())
    with pytest.raises(ValueError, match="user_col="):
        enricher.enrich(candidates.rename(columns={"user_id": "uid"}))
    with pytest.raises(ValueError, match="preview_format"):
        enricher.enrich(candidates, previews=True, preview_format="jpeg")
    no_dir = Enricher.load(saved_workdir)
    with pytest.raises(ValueError, match="preview_dir="):
        no_dir.enrich(candidates, previews=True)
    no_gen = Enricher.load(saved_workdir, generators=False)
    with pytest.raises(NotFittedError, match="blurbs=False"):
        no_gen.enrich(candidates, blurbs=True)
    with pytest.raises(TypeError, match="modalities=\\['text'\\]"):
        enricher.enrich(candidates, modalities="text")


def test_enricher_pickles_as_its_directory(enricher, candidates):
    data = pickle.dumps(enricher)
    assert len(data) < 2000  # the path and options, not the model
    copy = pickle.loads(data)
    pd.testing.assert_frame_equal(copy.enrich(candidates), enricher.enrich(candidates))
    in_memory = Enricher(enricher.model)
    with pytest.raises(TypeError, match="Enricher.load"):
        pickle.dumps(in_memory)


# --------------------------------------------------------------------- scikit-learn
def test_transformer_features_match_the_core(enricher, candidates):
    tf = RecgenFeatures(enricher, fill_value=None).fit(candidates)
    out = tf.transform(candidates)
    core = enricher.enrich(candidates)
    assert out.shape == (len(candidates), 2 + len(FEATS))
    np.testing.assert_array_equal(out[:, 0], candidates["cf_score"].to_numpy())
    np.testing.assert_array_equal(out[:, 2:], core[FEATS].to_numpy(dtype=np.float64))
    assert list(tf.get_feature_names_out()) == ["cf_score", "rank"] + FEATS
    tf.set_output(transform="pandas")
    frame = tf.transform(candidates)
    assert list(frame.columns) == ["cf_score", "rank"] + FEATS
    filled = RecgenFeatures(enricher).fit_transform(candidates)
    assert not np.isnan(filled).any() and filled[3, 2] == 0.0


def test_transformer_errors(enricher, candidates):
    with pytest.raises(ValueError, match="user_col='uid'"):
        RecgenFeatures(enricher, user_col="uid").fit(candidates)
    with pytest.raises(ValueError, match="saved recgen directory"):
        RecgenFeatures().fit(candidates)
    tf = RecgenFeatures(enricher).fit(candidates)
    with pytest.raises(ValueError, match="missing:\n- rank"):
        tf.transform(candidates[["user_id", "item_id", "cf_score"]])
    with pytest.raises(ValueError, match="expecting 4 features"):
        tf.transform(candidates.to_numpy()[:, :3])
    with pytest.raises(ValueError, match="numeric"):
        RecgenFeatures(enricher).fit_transform(candidates.assign(rank="x"))


@pytest.mark.parametrize("ranker", ["logistic", "hgb", "lightgbm"])
def test_pipeline_before_rankers_learns_taste(enricher, sample, ranker, saved_workdir):
    """Inside a Pipeline, the recgen features let any ranker separate a user's held-out positives
    from random items, though the pass-through score is pure noise."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline

    inter = sample.interactions
    rng = np.random.default_rng(1)
    items = sample.items["item_id"].to_numpy()
    pos = inter[["user_id", "item_id"]].assign(label=1)
    neg = pd.DataFrame({"user_id": inter["user_id"].to_numpy(), "item_id": rng.choice(items, len(inter)), "label": 0})
    data = pd.concat([pos, neg], ignore_index=True).sample(frac=1.0, random_state=0)
    data["noise"] = rng.normal(size=len(data))
    X, y = data[["user_id", "item_id", "noise"]], data["label"].to_numpy()
    half = len(X) // 2
    if ranker == "logistic":
        est = LogisticRegression(max_iter=500)
    elif ranker == "hgb":
        est = HistGradientBoostingClassifier(max_iter=50)
    else:
        lgb = pytest.importorskip("lightgbm")
        est = lgb.LGBMClassifier(n_estimators=50, verbose=-1)
    pipe = make_pipeline(RecgenFeatures(str(saved_workdir)), est).fit(X.iloc[:half], y[:half])
    auc = roc_auc_score(y[half:], pipe.predict_proba(X.iloc[half:])[:, 1])
    assert auc > 0.75, auc
    clone_pipe = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_allclose(clone_pipe.predict_proba(X.iloc[half:])[:, 1], pipe.predict_proba(X.iloc[half:])[:, 1])


# parametrize_with_checks feeds random numeric arrays: ids become unknown ids (features 0,
# flags 0), which is a valid use. The model directory is linked in by the fixture below.
_CHECK_DIR = Path(tempfile.mkdtemp(prefix="recgen-skcheck-")) / "work"

# Every check applies: ids of any type (strings, numbers, NaN, even objects) are valid input,
# so random arrays exercise the real code path.

@pytest.fixture(scope="module", autouse=True)
def _link_check_dir(saved_workdir):
    if not _CHECK_DIR.exists():
        _CHECK_DIR.symlink_to(saved_workdir, target_is_directory=True)
    yield


from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

# scikit-learn's own checks, with ids made from the check alone: the estimator's repr holds
# _CHECK_DIR, a random temp path, and pytest-xdist needs every worker to collect the same ids
_CHECKS = parametrize_with_checks([RecgenFeatures(str(_CHECK_DIR), user_col=0, item_col=1)])
_CHECK_CASES = list(_CHECKS.args[1])


def _check_id(check) -> str:
    func = getattr(check, "func", check)
    kwargs = getattr(check, "keywords", {}) or {}
    return func.__name__ + ("(" + ",".join(f"{k}={v}" for k, v in sorted(kwargs.items())) + ")" if kwargs else "")


@pytest.mark.parametrize("estimator, check", _CHECK_CASES, ids=[_check_id(c) for _, c in _CHECK_CASES])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)
