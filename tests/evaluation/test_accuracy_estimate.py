"""The accuracy estimate on a synthetic pool whose truth is known: Monte Carlo checks of bias and coverage."""
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from assay.evaluation import accuracy

A_TRUE, B_TRUE = -0.4, 0.8  # an overconfident model: P(right) = sigmoid(-0.4 + 0.8 logit(confidence))


def _pool(n=3_000, seed=0):
    rng = np.random.default_rng(seed)
    conf_N = 0.5 + 0.5 * rng.beta(3.0, 1.2, size=n)  # binary: the predicted class's probability is >= 0.5
    p_right_N = accuracy.calibrate(np.array([A_TRUE, B_TRUE]), conf_N)
    return conf_N, p_right_N


def test_platt_fit_matches_sklearn_without_a_prior_or_lapse():
    rng = np.random.default_rng(1)
    conf_N, p_right_N = _pool(4_000, seed=1)
    right_N = rng.random(len(conf_N)) < p_right_N
    theta, cov = accuracy.fit_calibration(conf_N, right_N, prior=0.0, lapse=False)
    z = np.log(np.clip(conf_N, 1e-6, 1 - 1e-6)) - np.log1p(-np.clip(conf_N, 1e-6, 1 - 1e-6))
    ref = LogisticRegression(C=1e12, tol=1e-10, max_iter=10_000).fit(z[:, None], right_N)
    assert theta[0] == pytest.approx(ref.intercept_[0], abs=1e-4)
    assert theta[1] == pytest.approx(ref.coef_[0, 0], abs=1e-4)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def _round_of_tests(conf_N, p_right_N, rng, n_picked, n_audits):
    """One project's answers and tests: the least confident items picked as a strategy would (by the model's
    own numbers), plus uniform audits. Returns the estimate and the realized accuracy on the pool."""
    right_N = rng.random(len(conf_N)) < p_right_N
    weights = (1 - conf_N) ** 2
    picked = rng.choice(len(conf_N), size=n_picked, replace=False, p=weights / weights.sum())
    audits = rng.choice(np.setdiff1d(np.arange(len(conf_N)), picked), size=n_audits, replace=False)
    tests = np.concatenate([picked, audits])
    audit_M = np.r_[np.zeros(len(picked), bool), np.ones(len(audits), bool)]
    est = accuracy.estimate(conf_N, [], conf_N[tests], right_N[tests], audit_M, random_state=int(rng.integers(1e9)))
    return est, float(right_N.mean())


def test_estimate_is_unbiased_and_covers_when_tests_are_chosen_by_confidence():
    """Tests picked the way a strategy picks (the least confident, by the model's own numbers) plus uniform
    audits: given the confidence, a picked item is right as often as any, so the recalibrated mean is unbiased."""
    conf_N, p_right_N = _pool()
    truth = float(p_right_N.mean())  # the model's expected accuracy on the pool
    rng = np.random.default_rng(2)
    estimates, covered = [], []
    for _ in range(150):
        est, realized = _round_of_tests(conf_N, p_right_N, rng, n_picked=200, n_audits=15)
        estimates.append(est.accuracy)
        covered.append(est.low <= realized <= est.high)
    estimates = np.array(estimates)
    se = estimates.std() / np.sqrt(len(estimates))
    assert abs(estimates.mean() - truth) < max(3 * se, 0.004), (estimates.mean(), truth)
    assert np.mean(covered) >= 0.85
    # The confidence alone is off by the miscalibration; the estimate is not.
    assert conf_N.mean() - truth > 0.05


def test_audits_alone_are_an_unbiased_sample():
    # A pool of 500, not 3,000: the audit candidate reads only the audits, while every call's cost is in the
    # calibrated draws over the pool (80 ms a call at 3,000). Each draw of 20 audits is still a uniform sample
    # of a finite pool, whose accuracy the 2,000 means must hit within the same standard-error bound.
    conf_N, p_right_N = _pool(n=500, seed=3)
    rng = np.random.default_rng(4)
    right_N = rng.random(len(conf_N)) < p_right_N
    means = []
    for _ in range(2_000):
        audits = rng.choice(len(conf_N), size=20, replace=False)
        est = accuracy.estimate(conf_N, [], conf_N[audits], right_N[audits], np.ones(20, bool), random_state=0)
        means.append(est.candidates["audit"][0])
    assert np.mean(means) == pytest.approx(right_N.mean(), abs=3 * np.std(means) / np.sqrt(len(means)) + 1e-3)


def test_old_tests_count_less():
    w = accuracy.recency_weights([0, 50, 100, 400], n_labels=200)
    assert w[0] == 1.0 and w[1] == pytest.approx(0.5 ** 0.5) and w[2] == pytest.approx(0.5)
    assert accuracy.estimate([0.9], [], [], [], []) is None


def test_lapse_fit_is_the_penalized_maximum_and_recovers_the_noise():
    """Fisher scoring lands on the maximum scipy finds for the same penalized likelihood, and with many
    tests the lapse comes out near the 3% of answers made wrong on purpose."""
    from scipy import optimize

    rng = np.random.default_rng(7)
    conf_N = 1 - 0.5 * rng.beta(0.6, 6.0, size=20_000)
    right_N = rng.random(len(conf_N)) < 0.97 * accuracy.calibrate(np.array([A_TRUE, B_TRUE]), conf_N)
    theta, cov = accuracy.fit_calibration(conf_N, right_N)
    z_N = np.log(conf_N) - np.log1p(-conf_N)
    centre = np.array([0.0, 1.0, np.log(accuracy.LAPSE_PRIOR / (1 - accuracy.LAPSE_PRIOR))])
    precision = np.array([accuracy.CALIBRATION_PRIOR] * 2 + [1 / accuracy.LAPSE_PRIOR_SD ** 2])

    def neg_log_post(t):
        p = (1 - 1 / (1 + np.exp(-t[2]))) / (1 + np.exp(-(t[0] + t[1] * z_N)))
        return -np.sum(np.where(right_N, np.log(p), np.log1p(-p))) + 0.5 * np.sum(precision * (t - centre) ** 2)

    ref = optimize.minimize(neg_log_post, centre, method="Nelder-Mead",
                            options={"xatol": 1e-7, "fatol": 1e-9, "maxiter": 20_000})
    assert theta == pytest.approx(ref.x, abs=2e-3)
    assert 1 / (1 + np.exp(-theta[2])) == pytest.approx(0.03, abs=0.01)
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_estimate_holds_under_label_noise():
    """3% of answers wrong whatever the confidence, most items confident (late in a project): the estimate
    stays within 0.01 of the truth and the interval covers it."""
    rng0 = np.random.default_rng(5)
    conf_N = 1 - 0.5 * rng0.beta(0.6, 6.0, size=4_000)
    p_right_N = 0.97 * conf_N
    rng = np.random.default_rng(6)
    errors, covered = [], []
    for _ in range(60):
        est, realized = _round_of_tests(conf_N, p_right_N, rng, n_picked=300, n_audits=30)
        errors.append(est.accuracy - realized)
        covered.append(est.low <= realized <= est.high)
    assert abs(np.mean(errors)) < 0.01
    assert np.mean(covered) >= 0.85


def test_log_evidence_matches_importance_sampling():
    """The Laplace evidence of each shrinkage, against an importance-sampling integral of likelihood times
    prior over (a, b, eta): the difference between the two shrinkages, which is all the average uses."""
    from scipy import stats

    rng = np.random.default_rng(11)
    conf_N, p_right_N = _pool(400, seed=11)
    tests = rng.choice(len(conf_N), size=120, replace=False)
    conf_M, right_M = conf_N[tests], (rng.random(120) < p_right_N[tests]).astype(float)
    z_M = np.log(conf_M) - np.log1p(-conf_M)

    def log_evidence_by_sampling(prior):
        theta, cov = accuracy.fit_calibration(conf_M, right_M, prior=prior)
        proposal = stats.multivariate_t(theta, 2.0 * cov, df=5, seed=12)
        T_S_P = proposal.rvs(size=200_000)
        p_S_M = (1 - 1 / (1 + np.exp(-T_S_P[:, 2:3]))) / (1 + np.exp(-(T_S_P[:, :1] + T_S_P[:, 1:2] * z_M)))
        p_S_M = np.clip(p_S_M, 1e-12, 1 - 1e-12)
        log_lik_S = np.sum(np.where(right_M > 0, np.log(p_S_M), np.log1p(-p_S_M)), axis=1)
        centre = np.array([0.0, 1.0, np.log(accuracy.LAPSE_PRIOR / (1 - accuracy.LAPSE_PRIOR))])
        prior_pdf = stats.multivariate_normal(centre, np.diag([1 / prior, 1 / prior, accuracy.LAPSE_PRIOR_SD ** 2]))
        log_w_S = log_lik_S + prior_pdf.logpdf(T_S_P) - proposal.logpdf(T_S_P)
        top = log_w_S.max()
        return top + np.log(np.mean(np.exp(log_w_S - top))), theta, cov

    sampled, laplace = [], []
    for prior in accuracy.CALIBRATION_PRIORS:
        value, theta, cov = log_evidence_by_sampling(prior)
        sampled.append(value)
        laplace.append(accuracy.log_evidence(conf_M, right_M, prior, theta, cov))
    # up to one constant shared by every shrinkage (the Gaussian's 2 pi terms): compare differences
    assert laplace[1] - laplace[0] == pytest.approx(sampled[1] - sampled[0], abs=0.1)


def test_mixture_weights_follow_the_evidence_and_count_the_spread():
    mean, var, w = accuracy.mixture([0.80, 0.90], [0.01 ** 2, 0.01 ** 2], [0.0, np.log(3.0)])
    assert w == pytest.approx([0.25, 0.75])
    assert mean == pytest.approx(0.875)
    assert var == pytest.approx(0.01 ** 2 + 0.25 * 0.075 ** 2 + 0.75 * 0.025 ** 2)


def _one_confidence_round(conf_N, right_N, rng, n_picked=300, n_audits=20):
    """A margin strategy on a binary task late in a project: every pick served at confidence 0.50-0.55,
    and the audits the only tests of the confident end."""
    near = np.flatnonzero(conf_N < 0.55)
    picked = rng.choice(near, size=n_picked, replace=False)
    audits = rng.choice(np.setdiff1d(np.arange(len(conf_N)), picked), size=n_audits, replace=False)
    tests = np.concatenate([picked, audits])
    audit_M = np.r_[np.zeros(n_picked, bool), np.ones(n_audits, bool)]
    return accuracy.estimate(conf_N, [], conf_N[tests], right_N[tests], audit_M,
                             random_state=int(rng.integers(1e9)))


def test_tests_at_one_confidence_leave_a_calibrated_model_near_its_confidence(monkeypatch):
    """The failure adult showed: picks at one confidence cannot pin the slope, and 20 audits moved a loosely
    shrunk calibration far from a model whose confidence was right. Averaging the shrinkages by evidence
    keeps the error well below the loose shrinkage's alone, and the interval still covers."""
    rng0 = np.random.default_rng(21)
    conf_N = np.r_[0.5 + 0.05 * rng0.random(1_500), 0.55 + 0.45 * rng0.beta(4.0, 1.0, size=6_000)]
    right_N = rng0.random(len(conf_N)) < conf_N  # calibrated: P(right) is the confidence

    def errors(priors):
        monkeypatch.setattr(accuracy, "CALIBRATION_PRIORS", priors)
        rng = np.random.default_rng(22)
        out, covered = [], []
        for _ in range(60):
            est = _one_confidence_round(conf_N, right_N, rng)
            out.append(est.accuracy - right_N.mean())
            covered.append(est.low <= right_N.mean() <= est.high)
        return np.sqrt(np.mean(np.square(out))), np.mean(covered)

    averaged_rmse, covered = errors(accuracy.CALIBRATION_PRIORS)
    loose_rmse, _ = errors((accuracy.CALIBRATION_PRIOR,))
    assert averaged_rmse < 0.75 * loose_rmse, (averaged_rmse, loose_rmse)
    assert covered >= 0.85
