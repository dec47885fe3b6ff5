"""nn.estimators: MLPClassifier / MLPRegressor as drop-ins for scikit-learn's."""
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.neural_network import MLPClassifier as SkClassifier
from sklearn.neural_network import MLPRegressor as SkRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from nn.estimators import MLPClassifier, MLPRegressor


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0)


def small_multiclass(n=90, d=5, k=3, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)
    assert len(np.unique(y)) == k
    return X, y


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def test_same_parameters_and_defaults_as_sklearn():
    for ours, theirs, extra in ((MLPClassifier(), SkClassifier(), "cross_entropy"),
                                (MLPRegressor(), SkRegressor(), "document")):
        mine, sk = ours.get_params(), theirs.get_params()
        assert set(sk) <= set(mine)            # max_fun (L-BFGS only) and loss included
        for name, value in sk.items():
            assert mine[name] == value, name
        assert mine["cost"] == extra
        assert mine["l2_convention"] == "sklearn" and mine["dtype"] == np.float64
        assert mine["progress"] is False
        assert ours.loss == theirs.loss


def test_positional_parameters_in_sklearns_order():
    import inspect
    for ours, theirs in ((MLPClassifier, SkClassifier), (MLPRegressor, SkRegressor)):
        positional = [[p.name for p in inspect.signature(cls.__init__).parameters.values()
                       if p.kind == p.POSITIONAL_OR_KEYWORD] for cls in (ours, theirs)]
        assert positional[0] == positional[1]


def test_clone_get_set_params_round_trip():
    est = MLPClassifier(hidden_layer_sizes=(7, 5), alpha=0.01, solver="sgd", dtype=np.float32)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    copy.set_params(alpha=0.5, activation="tanh")
    assert copy.alpha == 0.5 and copy.activation == "tanh" and est.alpha == 0.01
    assert MLPClassifier(**copy.get_params()).get_params() == copy.get_params()


def test_cross_val_score_and_pipeline(digits):
    X_train, X_test, y_train, y_test = digits
    scores = quiet(cross_val_score, MLPClassifier(hidden_layer_sizes=(20,), max_iter=30,
                                                  random_state=0), X_train, y_train, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.75
    pipe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(20,), max_iter=30,
                                                         random_state=0))
    quiet(pipe.fit, X_train, y_train)
    assert pipe.score(X_test, y_test) > 0.9


def test_digits_with_defaults(digits):
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0)
    est = MLPClassifier(random_state=0).fit(X_train, y_train)
    assert est.score(X_test, y_test) >= 0.96
    assert est.n_iter_ < 200 and len(est.loss_curve_) == est.n_iter_
    assert est.best_loss_ == min(est.loss_curve_)
    assert est.t_ == est.n_iter_ * len(X_train)
    assert est.n_features_in_ == 64
    assert [W.shape for W in est.coefs_] == [(64, 100), (100, 10)]
    assert [b.shape for b in est.intercepts_] == [(100,), (10,)]


def test_string_labels_and_probabilities():
    X, y = small_multiclass()
    names = np.array(["cat", "dog", "emu"])[y]
    est = quiet(MLPClassifier(hidden_layer_sizes=(10,), max_iter=200, random_state=0).fit,
                X, names)
    assert list(est.classes_) == ["cat", "dog", "emu"]
    assert set(est.predict(X)) <= {"cat", "dog", "emu"}
    theirs = quiet(SkClassifier(hidden_layer_sizes=(10,), max_iter=200, random_state=0).fit,
                   X, names)
    np.testing.assert_array_equal(est.predict(X), theirs.predict(X))
    assert est.score(X, names) > 0.7
    P = est.predict_proba(X)
    assert P.shape == (len(X), 3)
    np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-12)
    np.testing.assert_array_equal(est.classes_[P.argmax(axis=1)], est.predict(X))


def test_binary_has_sklearn_shapes_and_two_probability_columns():
    X, y = small_multiclass()
    labels = np.where(y > 0, "yes", "no")
    est = quiet(MLPClassifier(hidden_layer_sizes=(8,), max_iter=100, random_state=0).fit,
                X, labels)
    assert [W.shape for W in est.coefs_] == [(5, 8), (8, 1)]       # one logistic output
    P = est.predict_proba(X)
    assert P.shape == (len(X), 2)
    np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-12)
    np.testing.assert_array_equal(est.classes_[(P[:, 1] > 0.5).astype(int)], est.predict(X))


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_a_single_class_trains_and_predicts_as_sklearn(solver):
    """y with one class: scikit-learn fits one logistic output towards 0, predicts the class
    and gives two probability columns; so does this (it used to refuse)."""
    X = np.random.default_rng(3).random((20, 3))
    y = np.full(20, "only")
    fitted = []
    for cls in (MLPClassifier, SkClassifier):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted.append(cls(solver=solver, max_iter=5, random_state=0).fit(X, y))
    ours, theirs = fitted
    assert list(ours.classes_) == ["only"] and ours.n_outputs_ == 1
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    assert list(ours.predict(X[:3])) == list(theirs.predict(X[:3])) == ["only"] * 3
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-6)
    assert ours.score(X, y) == 1.0
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-6)


def test_regressor_fits_a_smooth_function_with_the_documents_cost():
    rng = np.random.RandomState(0)
    X = rng.uniform(-3, 3, (400, 1))
    y = np.sin(X[:, 0])
    est = quiet(MLPRegressor(hidden_layer_sizes=(30,), activation="tanh", max_iter=600,
                             learning_rate_init=0.01, random_state=0).fit, X, y)
    assert est.get_params()["cost"] == "document"
    assert est.score(X, y) > 0.9
    assert est.predict(X).shape == (400,)
    # the reported loss is the document's J = 1/(2n) Σ (y − h)² plus the L2 term
    J = 0.5 * np.mean((y - est.predict(X)) ** 2)
    assert est.loss_curve_[-1] == pytest.approx(J, rel=0.5)


def targets_of_kind(kind):
    """(X, y) with a multiclass, a binary (one logistic output) or a multilabel target."""
    X, y = small_multiclass()
    if kind == "binary":
        return X, (y > 0).astype(int)
    if kind == "multilabel":
        return X, np.stack([y == 0, y == 2, X[:, 3] > 0], axis=1).astype(int)
    return X, y


@pytest.mark.parametrize("kind", ["multiclass", "binary", "multilabel"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("shuffle", [False, True])
def test_tracks_sklearn_coefficients(solver, shuffle, kind):
    X, y = targets_of_kind(kind)
    kwargs = dict(hidden_layer_sizes=(6,), solver=solver, max_iter=5, batch_size=16,
                  learning_rate_init=0.05, alpha=1e-3, shuffle=shuffle, random_state=3,
                  tol=0, n_iter_no_change=100)
    # identical initial weights: both draw scikit-learn's _init_coef from check_random_state(3);
    # checked explicitly by copying scikit-learn's starting point in as well
    start = quiet(SkClassifier(**{**kwargs, "max_iter": 1}).fit, X, y)
    ours, theirs = MLPClassifier(**kwargs), SkClassifier(**kwargs)
    quiet(ours.fit, X, y)
    quiet(theirs.fit, X, y)
    assert start.coefs_[0].shape == ours.coefs_[0].shape
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-6)
    assert ours.n_iter_ == theirs.n_iter_ == 5 and ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("kind", ["binary", "multilabel"])
def test_logistic_outputs_learn(kind):
    # one sigmoid per output, applied once: a separable target is learnt, not the majority class
    X, y = targets_of_kind(kind)
    est = quiet(MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit, X, y)
    theirs = quiet(SkClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit,
                   X, y)
    majority = {"binary": 0.65, "multilabel": 0.28}[kind]     # the most frequent row's share
    assert est.score(X, y) == pytest.approx(theirs.score(X, y))
    assert est.score(X, y) > majority + 0.25


def test_tracks_sklearn_after_copying_its_weights_in():
    """Set both to the same weights by copying: warm_start keeps our copied-in start."""
    X, y = small_multiclass()
    kwargs = dict(hidden_layer_sizes=(6,), solver="adam", batch_size=30, shuffle=False,
                  tol=0, n_iter_no_change=100)
    theirs = quiet(SkClassifier(max_iter=1, warm_start=True, random_state=1, **kwargs).fit, X, y)
    ours = quiet(MLPClassifier(max_iter=1, warm_start=True, random_state=2, **kwargs).fit, X, y)
    ours.coefs_, ours.intercepts_ = theirs.coefs_, theirs.intercepts_
    theirs.set_params(max_iter=3)
    ours.set_params(max_iter=3)
    quiet(theirs.fit, X, y)
    quiet(ours.fit, X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_convergence_and_warning():
    X, y = small_multiclass()
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0).fit(X, y)
    kwargs = dict(hidden_layer_sizes=(5,), max_iter=500, tol=10.0, n_iter_no_change=2,
                  random_state=0)
    est = MLPClassifier(**kwargs).fit(X, y)
    # the first epoch improves on inf; then more than n_iter_no_change epochs without a gain
    assert est.n_iter_ == SkClassifier(**kwargs).fit(X, y).n_iter_ == 4


def test_float32_keeps_float32(digits):
    X_train, X_test, y_train, y_test = digits
    est = quiet(MLPClassifier(hidden_layer_sizes=(20,), max_iter=5, dtype=np.float32,
                              random_state=0).fit, X_train, y_train)
    assert all(W.dtype == np.float32 for W in est.coefs_ + est.intercepts_)
    assert est.predict_proba(X_test).dtype == np.float32


def test_early_stopping_and_partial_fit():
    X, y = small_multiclass(n=200)
    est = MLPClassifier(hidden_layer_sizes=(8,), early_stopping=True, max_iter=300,
                        random_state=0).fit(X, y)
    assert len(est.validation_scores_) == est.n_iter_ and est.best_loss_ is None
    est = MLPClassifier(hidden_layer_sizes=(8,), random_state=0)
    with pytest.raises(ValueError, match="classes"):
        est.partial_fit(X, y)
    for _ in range(3):
        est.partial_fit(X, y, classes=[0, 1, 2])
    assert len(est.loss_curve_) == 3 and est.t_ == 3 * len(X)


def test_a_pickled_estimator_trains_on_as_the_original(digits):
    """joblib and deepcopy pickle the fitted estimator with its Adam; partial_fit afterwards
    must take the same steps as on the original (it used to ascend: w ← w + g)."""
    import pickle
    X_train, _, y_train, _ = digits
    est = quiet(MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit,
                X_train, y_train)
    twin = pickle.loads(pickle.dumps(est))
    for model in (est, twin):
        for _ in range(3):
            model.partial_fit(X_train, y_train)
    assert twin.loss_curve_ == est.loss_curve_
    for a, b in zip(est.coefs_ + est.intercepts_, twin.coefs_ + twin.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert twin.loss_curve_[-1] < twin.loss_curve_[4]          # still descending


def test_partial_fit_checks_classes_as_sklearn():
    X, y = small_multiclass()
    for ours, theirs in ((MLPClassifier(max_iter=3), SkClassifier(max_iter=3)),):
        for classes in ([0, 1], [0, 1, 5]):                 # y has a label 2 not in classes
            with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
                clone(ours).partial_fit(X, y, classes=classes)
            with pytest.raises(ValueError, match="`y` has classes not in `self.classes_`"):
                clone(theirs).partial_fit(X, y, classes=classes)
        for est in (ours, theirs):
            est.partial_fit(X, y, classes=[0, 1, 2])
            with pytest.raises(ValueError, match="is not the same as on last call"):
                est.partial_fit(X, y, classes=[0, 1, 2, 3])
            est.partial_fit(X, y, classes=[2, 1, 0])           # the same set: accepted


def test_several_outputs_report_sklearns_loss_and_stop_with_it():
    """The document's J is differentiated; loss_curve_ is scikit-learn's squared_error / 2, J
    over k outputs, so tol compares the same numbers and training stops at the same epoch."""
    from sklearn.datasets import make_regression
    X, y = make_regression(100, 4, n_targets=2, noise=5.0, random_state=0)
    kw = dict(hidden_layer_sizes=(8,), max_iter=2000, random_state=0, learning_rate_init=0.01)
    ours, theirs = MLPRegressor(**kw).fit(X, y / 100), SkRegressor(**kw).fit(X, y / 100)
    assert ours.n_iter_ == theirs.n_iter_ < 2000
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=0, atol=1e-12)


def test_warm_start_applies_changed_settings_to_the_weights():
    X, y = small_multiclass()
    ours = quiet(MLPClassifier((6,), random_state=0, max_iter=5, warm_start=True).fit, X, y)
    theirs = quiet(SkClassifier((6,), random_state=0, max_iter=5, warm_start=True).fit, X, y)
    for est in (ours, theirs):
        quiet(est.set_params(activation="tanh").fit, X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    quiet(ours.set_params(dtype=np.float32).fit, X, y)      # fit converts the weights
    assert {c.dtype for c in ours.coefs_} == {np.dtype(np.float32)}
    with pytest.raises(ValueError, match="partial_fit keeps the network's dtype"):
        ours.set_params(dtype=np.float64).partial_fit(X, y)


@pytest.mark.parametrize("settings", [dict(momentum=1.0, solver="sgd"),
                                      dict(n_iter_no_change=np.inf),
                                      dict(validation_fraction=0.0),
                                      dict(max_fun=10)])
def test_accepts_every_value_sklearn_accepts(settings):
    X, y = small_multiclass()
    ours = quiet(MLPClassifier((6,), random_state=0, max_iter=5, **settings).fit, X, y)
    theirs = quiet(SkClassifier((6,), random_state=0, max_iter=5, **settings).fit, X, y)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)


@pytest.mark.parametrize("kind, settings", [("multiclass", {}), ("multiclass", {"solver": "sgd"}),
                                            ("multiclass", {"early_stopping": True}),
                                            ("binary", {"batch_size": 64}),
                                            ("regression", {}),
                                            ("regression", {"early_stopping": True})])
def test_sample_weight_tracks_sklearn(digits, kind, settings):
    """Σᵢ wᵢ Jᵢ / Σᵢ wᵢ per batch, the L2 batch size Σᵢ wᵢ, weighted early-stopping scores:
    scikit-learn's coefficients, losses and outputs to rounding (zero weights included)."""
    from sklearn.datasets import make_regression
    X_train, _, y_train, _ = digits
    w = np.random.default_rng(0).uniform(0, 3, len(X_train))
    w[:40] = 0
    ours_cls, theirs_cls = MLPClassifier, SkClassifier
    X, y = X_train, (y_train > 4).astype(int) if kind == "binary" else y_train
    if kind == "regression":
        X, y = make_regression(len(w), 6, n_targets=2, noise=5.0, random_state=0)
        y = y / 100
        ours_cls, theirs_cls = MLPRegressor, SkRegressor
    kw = dict(hidden_layer_sizes=(12,), random_state=0, max_iter=12, **settings)
    ours = quiet(ours_cls(**kw).fit, X, y, sample_weight=w)
    theirs = quiet(theirs_cls(**kw).fit, X, y, sample_weight=w)
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13)
    if kind == "regression":
        np.testing.assert_allclose(ours.predict(X), theirs.predict(X), atol=1e-12)
    else:
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    if kind != "regression" and not settings.get("early_stopping"):
        ours.partial_fit(X, y, sample_weight=w)
        theirs.partial_fit(X, y, sample_weight=w)
        np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    with pytest.raises(ValueError, match="at least one non-zero"):
        ours_cls(**kw).fit(X, y, sample_weight=np.zeros(len(w)))
    if kind == "multiclass" and not settings:
        half = np.r_[np.zeros(len(w) // 2), np.ones(len(w) - len(w) // 2)]
        with pytest.raises(ValueError, match="Weights sum to zero"):      # one batch all 0
            ours_cls(**dict(kw, shuffle=False, batch_size=10)).fit(X, y, sample_weight=half)


@pytest.mark.parametrize("outputs, settings", [(1, {}), (2, {}), (1, {"early_stopping": True}),
                                               (1, {"solver": "sgd", "weighted": True})])
def test_poisson_regression_tracks_sklearn(outputs, settings):
    """loss='poisson': exp output, half Poisson deviance, gradient (ŷ − y)/n from the logits."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 5))
    rate = np.exp(0.3 * X[:, 0] - 0.2 * X[:, 1])
    y = np.stack([rng.poisson(rate * (j + 1)) for j in range(outputs)], axis=1).astype(float)
    y = y[:, 0] if outputs == 1 else y
    settings = dict(settings)
    w = rng.uniform(0, 2, 300) if settings.pop("weighted", False) else None
    kw = dict(loss="poisson", hidden_layer_sizes=(8,), random_state=0, max_iter=40, **settings)
    ours = quiet(MLPRegressor(**kw).fit, X, y, sample_weight=w)
    theirs = quiet(SkRegressor(**kw).fit, X, y, sample_weight=w)
    assert ours.out_activation_ == theirs.out_activation_ == "exp"
    assert ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12)


@pytest.mark.parametrize("kind", ["multiclass", "regression", "weighted"])
def test_lbfgs_tracks_sklearn(digits, kind):
    """solver='lbfgs': scipy's L-BFGS-B on the whole set's J with chainrule's gradient, the
    parameters packed as scikit-learn packs them; the same iterations and minimum."""
    from sklearn.datasets import make_regression
    X, _, y, _ = digits
    ours_cls, theirs_cls, w = MLPClassifier, SkClassifier, None
    if kind == "regression":
        X, y = make_regression(200, 4, n_targets=2, noise=5.0, random_state=0)
        y = y / 100
        ours_cls, theirs_cls = MLPRegressor, SkRegressor
    if kind == "weighted":
        w = np.random.default_rng(1).uniform(0, 2, len(X))
    kw = dict(hidden_layer_sizes=(16,), solver="lbfgs", random_state=0, max_iter=30)
    ours = quiet(ours_cls(**kw).fit, X, y, sample_weight=w)
    theirs = quiet(theirs_cls(**kw).fit, X, y, sample_weight=w)
    assert ours.n_iter_ == theirs.n_iter_ == 30
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)
    out = (lambda e: e.predict(X)) if kind == "regression" else (lambda e: e.predict_proba(X))
    np.testing.assert_allclose(out(ours), out(theirs), atol=1e-8)
    assert not hasattr(ours, "loss_curve_") and not hasattr(ours, "partial_fit")
    with pytest.warns(ConvergenceWarning, match="lbfgs failed to converge"):
        ours_cls(**kw).fit(X, y)


def test_bad_input_errors():
    X, y = small_multiclass()
    with pytest.raises(ValueError, match="solver='newton'"):
        MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(activation="swish").fit(X, y)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier().fit(bad, y)
    est = quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=2).fit, X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :3])
    with pytest.raises(ValueError, match="sample"):
        MLPClassifier().fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="validation set is too small"):
        MLPClassifier(early_stopping=True).fit(X[:6], y[:6])
    with pytest.raises(ValueError, match="continuous|class labels"):
        MLPClassifier().fit(X, X[:, 0])
    with pytest.raises(ValueError, match="dtype"):
        MLPRegressor(dtype=np.int32).fit(X, X[:, 0])
    with pytest.raises(ValueError, match="negative which is not allowed for Poisson"):
        MLPRegressor(loss="poisson").fit(X, X[:, 0])
    with pytest.raises(ValueError, match="loss='gamma' is not supported"):
        MLPRegressor(loss="gamma").fit(X, X[:, 0])
    with pytest.raises(ValueError, match="validation_fraction"):
        MLPClassifier(early_stopping=True, validation_fraction=0.0).fit(X, y)
    with pytest.raises(ValueError, match="n_iter_no_change"):
        MLPClassifier(n_iter_no_change=0).fit(X, y)
    for name in ("shuffle", "nesterovs_momentum", "early_stopping", "warm_start"):
        with pytest.raises(ValueError, match=f"{name} must be True or False, got 1"):
            MLPClassifier(**{name: 1}).fit(X, y)
        with pytest.raises(ValueError):          # scikit-learn refuses these too
            SkClassifier(**{name: 1}).fit(X, y)


@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])
def test_passes_scikit_learns_estimator_checks(estimator, check):
    # scikit-learn's own conformance suite (input validation, binary/multiclass/multilabel
    # training, pickling, fit idempotence, error messages, …): a drop-in passes every check
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        check(estimator)


@pytest.mark.parametrize("kind, solver", [("multiclass", "adam"), ("multiclass", "sgd"),
                                          ("binary", "lbfgs"), ("multilabel", "lbfgs")])
def test_saturated_log_loss_is_sklearns_clipped_value(kind, solver):
    """Unscaled pixels (0…16) saturate the first outputs: scikit-learn's log loss clips each
    probability to [ε, 1 − ε], so loss_curve_, loss_ and the value L-BFGS sees are its clipped
    numbers (the exact J read 15.25 for its 15.18; L-BFGS then took other steps)."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:300], y[:300]
    y = {"multiclass": y, "binary": y > 4,
         "multilabel": np.stack([y > 4, y % 2 == 0], axis=1).astype(int)}[kind]
    kw = dict(solver=solver, max_iter=3, learning_rate_init=0.002, random_state=0)
    ours, theirs = quiet(MLPClassifier(**kw).fit, X, y), quiet(SkClassifier(**kw).fit, X, y)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-12)
    if solver != "lbfgs":
        np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
        assert ours.best_loss_ == pytest.approx(theirs.best_loss_, rel=1e-12)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_partial_fit_multilabel_as_sklearn():
    # the label binarizer is fitted on the indicator y, not on classes (which made every
    # multilabel partial_fit fail: "The object was not fitted with multilabel input")
    X, y = targets_of_kind("multilabel")
    kw = dict(hidden_layer_sizes=(6,), random_state=0, learning_rate_init=0.05)
    ours, theirs = MLPClassifier(**kw), SkClassifier(**kw)
    for est in (ours, theirs):
        est.partial_fit(X, y, classes=[0, 1, 2])
        est.partial_fit(X[:40], y[:40])
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("scale", [100, 1e100])
def test_early_stopping_survives_a_diverging_regressor_as_sklearn(scale):
    """A diverged epoch scores nan (scikit-learn's validation score, not r2_score's error on
    inf), and the best weights, the initial ones when no epoch scored, are restored."""
    from sklearn.datasets import make_regression
    X, y = make_regression(150, 5, noise=3, random_state=0)
    kw = dict(hidden_layer_sizes=(6,), solver="sgd", learning_rate_init=0.1, max_iter=20,
              random_state=0, early_stopping=True)
    with np.errstate(all="ignore"):
        ours = quiet(MLPRegressor(**kw).fit, X * scale, y * 100)
        theirs = quiet(SkRegressor(**kw).fit, X * scale, y * 100)
    assert np.isnan(ours.validation_scores_[-1]) and ours.n_iter_ == theirs.n_iter_
    np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_, rtol=1e-12)
    np.testing.assert_allclose(ours.predict(X), theirs.predict(X), rtol=1e-12)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo"])
def test_sparse_input_trains_and_predicts_as_its_dense_rows(fmt):
    """scikit-learn's MLP takes CSR/CSC X (COO is converted): the same fit as the dense rows,
    and scikit-learn's own MLP on the sparse input agrees."""
    import scipy.sparse
    X, y = load_digits(return_X_y=True)
    X, y = X[:200] / 16, y[:200]
    Xs = getattr(scipy.sparse, f"{fmt}_matrix")(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = MLPClassifier(max_iter=5, random_state=0).fit(X, y)
        sparse = MLPClassifier(max_iter=5, random_state=0).fit(Xs, y)
        sk = SkClassifier(max_iter=5, random_state=0).fit(Xs, y)
        reg = MLPRegressor(max_iter=5, random_state=0).fit(Xs, X[:, 20])
    assert sparse.loss_curve_ == dense.loss_curve_
    np.testing.assert_allclose(sparse.loss_curve_, sk.loss_curve_, rtol=1e-10)
    np.testing.assert_array_equal(sparse.predict_proba(Xs), dense.predict_proba(X))
    assert reg.predict(Xs).shape == (200,)


@pytest.mark.parametrize("settings", [
    dict(solver="sgd", learning_rate="invscaling", power_t=0.3, learning_rate_init=0.05),
    dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05, tol=1e-2,
         n_iter_no_change=2),
    dict(solver="sgd", momentum=0.9, nesterovs_momentum=False),
    dict(solver="sgd", momentum=0.5, nesterovs_momentum=True, batch_size=500),
    dict(solver="adam", beta_1=0.8, beta_2=0.99, epsilon=1e-6, tol=1e-2, n_iter_no_change=3),
    dict(solver="adam", early_stopping=True, validation_fraction=0.2, n_iter_no_change=2)])
@pytest.mark.parametrize("kind", ["multiclass", "regression"])
def test_schedules_momentum_and_stopping_track_sklearn(digits, settings, kind):
    """The learning-rate schedules, both momenta, Adam's constants and both stopping rules:
    scikit-learn's curve, iteration count, learning rate and weights, to rounding."""
    X, _, y, _ = digits
    ours_cls, theirs_cls = MLPClassifier, SkClassifier
    if kind == "regression":
        y = X[:, 20:23] - X[:, 40:43]               # three real targets from the pixels
        ours_cls, theirs_cls = MLPRegressor, SkRegressor
    kw = dict(hidden_layer_sizes=(10,), random_state=0, max_iter=25, **settings)
    ours, theirs = quiet(ours_cls(**kw).fit, X, y), quiet(theirs_cls(**kw).fit, X, y)
    assert ours.n_iter_ == theirs.n_iter_ and ours.t_ == theirs.t_
    np.testing.assert_allclose(ours.loss_curve_, theirs.loss_curve_, rtol=1e-11)
    if settings.get("early_stopping"):
        np.testing.assert_allclose(ours.validation_scores_, theirs.validation_scores_,
                                   rtol=1e-11)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)


def test_losses_are_numpy_floats_as_sklearns():
    """loss_, loss_curve_ and best_loss_ hold np.float64 (code may call .round() on them)."""
    X, y = small_multiclass()
    for solver in ("adam", "lbfgs"):
        ours = quiet(MLPClassifier((6,), solver=solver, random_state=0, max_iter=3).fit, X, y)
        theirs = quiet(SkClassifier((6,), solver=solver, random_state=0, max_iter=3).fit, X, y)
        assert type(ours.loss_) is type(theirs.loss_) is np.float64
        if solver == "adam":
            assert {type(v) for v in ours.loss_curve_} == {np.float64}
            assert type(ours.best_loss_) is type(theirs.best_loss_)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("solver, early_stopping", [("adam", False), ("sgd", True)])
def test_class_indices_train_as_the_one_hot_rows(monkeypatch, digits, dtype, solver,
                                                 early_stopping):
    """Softmax cross-entropy takes the batch's class indices in place of its one-hot rows (the
    compiled label loops): the same weights bit for bit, the same loss but for the last bits
    of J's sum."""
    X, _, y, _ = digits
    kw = dict(hidden_layer_sizes=(16,), max_iter=4, random_state=0, dtype=dtype,
              solver=solver, early_stopping=early_stopping, n_iter_no_change=100)
    fast = quiet(MLPClassifier(**kw).fit, X, y)
    seen = []
    monkeypatch.setattr(MLPClassifier, "_class_indices",
                        lambda self, Y: seen.append(Y.shape) or None)
    one_hot = quiet(MLPClassifier(**kw).fit, X, y)
    assert seen and seen[0][1] == 10                       # the one-hot path did run
    for a, b in zip(fast.coefs_ + fast.intercepts_, one_hot.coefs_ + one_hot.intercepts_):
        assert a.dtype == dtype and np.array_equal(a, b)
    eps = np.finfo(dtype).eps
    np.testing.assert_allclose(fast.loss_curve_, one_hot.loss_curve_, rtol=8 * eps)


def test_class_indices_are_used_for_softmax_cross_entropy_only():
    X, y = small_multiclass()
    est = quiet(MLPClassifier(max_iter=2, random_state=0).fit, X, y)
    Y = np.eye(3)[y]
    assert np.array_equal(est._class_indices(Y), y)
    binary = quiet(MLPClassifier(max_iter=2, random_state=0).fit, X, y > 0)
    assert binary._class_indices(np.eye(2)[(y > 0).astype(int)]) is None      # logistic
    document = quiet(MLPClassifier(max_iter=2, random_state=0, cost="document").fit, X, y)
    assert document._class_indices(Y) is None
    assert MLPRegressor()._class_indices(Y) is None
