"""Issue 28: the logistic regression starts from the label names' zero-shot weights (a Gaussian prior centred on
them), so the first labels refine the names; names that predict nothing are pushed back to the plain prior."""
from __future__ import annotations

import numpy as np

from assay.learning.acquire import fit_model, run_round
from assay.models.zeroshot import LabelPrior, ZeroShotClassifier, label_text

C, D = 8, 48


def _data(n_per_class: int, seed: int, noise: float = 0.9):
    """Unit rows around one direction per class (the classes' 'meaning'), with plenty of noise."""
    dirs = np.linalg.qr(np.random.default_rng(99).standard_normal((D, C)))[0].T  # orthonormal class directions
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(C), n_per_class)
    X = dirs[y] + noise * rng.standard_normal((len(y), D)) / np.sqrt(D) * 3
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    names = np.array([f"class_{c}" for c in range(C)], dtype=object)
    return X, names[y], dirs, names


def test_label_text_reads_underscores_as_spaces_and_prefers_a_description():
    assert label_text("change_accent") == "change accent"
    assert label_text("B-12", "vitamin B12 deficiency") == "vitamin B12 deficiency"
    assert label_text("x", "   ") == "x"


def test_useful_names_carry_the_classes_nobody_has_labeled_yet():
    X, y, dirs, names = _data(60, 0)
    X_test, y_test, _, _ = _data(40, 1)
    prior = LabelPrior(tuple(names), dirs + 0.3 * np.random.default_rng(2).standard_normal(dirs.shape) / np.sqrt(D))
    zero_shot = np.mean(ZeroShotClassifier(prior).classes_[prior.predict_proba(X_test).argmax(1)] == y_test)
    # Labels of two classes only: without the names the model knows two classes of eight.
    few = np.flatnonzero(np.isin(y, names[:2]))[::6]
    plain = fit_model("logreg", {}, X[few], y[few], random_state=0)
    named = fit_model("logreg", {}, X[few], y[few], random_state=0, label_prior=prior)
    assert list(named.classes_) == sorted(names) and len(plain.classes_) == 2
    acc_plain = np.mean(plain.predict(X_test) == y_test)
    acc_named = np.mean(named.predict(X_test) == y_test)
    assert acc_plain <= 0.25 + 1e-9
    # The names alone get 0.84 here; ten labels of two classes pull some of the others' items to those two
    # (0.69), still far from the plain model's two classes of eight.
    assert zero_shot > 0.8 and acc_named > 0.6, (acc_named, zero_shot)
    assert named.prior_scale_ > 0.5


def test_random_names_are_pushed_back_to_the_plain_prior():
    """Names that say nothing (random vectors, as random strings embed): the prior's scale goes to about 0, and
    the model predicts as the plain one does, within seed noise."""
    gaps, scales = [], []
    for seed in range(4):
        X, y, dirs, names = _data(12, 10 + seed)
        X_test, y_test, _, _ = _data(40, 20 + seed)
        rng = np.random.default_rng(30 + seed)
        useless = LabelPrior(tuple(names), rng.standard_normal((C, D)))
        plain = fit_model("logreg", {}, X, y, random_state=seed)
        named = fit_model("logreg", {}, X, y, random_state=seed, label_prior=useless)
        gaps.append(np.mean(named.predict(X_test) == y_test) - np.mean(plain.predict(X_test) == y_test))
        scales.append(named.prior_scale_)
    assert max(scales) < 0.35, scales
    assert np.mean(gaps) > -0.02 and min(gaps) > -0.05, gaps


def test_before_any_label_a_round_suggests_from_the_names():
    X, y, dirs, names = _data(20, 3)
    prior = LabelPrior(tuple(names), dirs)
    result = run_round(model_spec="logreg", model_params={}, strategy_name="default", strategy_params=None,
                       X_labeled=X[:0], y_labeled=[], X_pool=X, batch_size=10, random_state=0, depth=50,
                       label_prior=prior)
    assert result.cold_start and result.classes == list(names)
    assert result.probs_B_C.shape == (10, C) and np.allclose(result.probs_B_C.sum(1), 1)
    assert len(result.more_indices) == 40 and result.more_probs.shape == (40, C)
    picked = np.concatenate([result.indices, result.more_indices])
    assert len(set(picked.tolist())) == 50
    guess = np.asarray(names)[np.vstack([result.probs_B_C, result.more_probs]).argmax(1)]
    assert np.mean(guess == y[picked]) > 0.6
    # One label (one class): a model already, from the names.
    one = run_round(model_spec="logreg", model_params={}, strategy_name="margin", strategy_params=None,
                    X_labeled=X[:1], y_labeled=[y[0]], X_pool=X[1:], batch_size=5, random_state=0,
                    label_prior=prior)
    assert one.cold_start
