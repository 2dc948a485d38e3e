"""Paired comparisons over repeated trainings, with tests that account for what the folds share.

Two methods evaluated on the same test folds give one difference per fold; the folds differ in
their training and test events, so the spread of the differences holds the training-to-training
and the test-sample fluctuations at once. But with k folds every two trainings share k - 2 of their
k - 1 training folds, so the differences are positively correlated and the naive paired t-test
overstates the evidence. The corrected resampled t-test of Nadeau and Bengio (Machine Learning 52
(2003) 239) inflates the variance of the mean from s^2 / J to (1 / J + n_test / n_train) s^2
(``test_train_ratio`` = n_test / n_train: 1 / (k - 2) in the mass scan, whose trainings test on one of k folds,
choose on another and train on the rest); without it (ratio 0) this is
the plain paired t-test. "significant" means p < ``ALPHA``; a study that makes many comparisons
also corrects the p-values for their number with Holm's method (:func:`holm`).

The power analysis of the same test, from the noncentral t (the smallest ratio J pairs detect with
probability ``POWER``, the pairs a given ratio needs), is ``evaluation.tagger_comparison.power``. With
the correction the variance of the mean cannot fall below (n_test / n_train) s^2 however many folds
are added: beyond that only more events (a smaller s) help.
"""

import numpy as np
from scipy import stats

ALPHA = 0.05
POWER = 0.8


def paired_difference(a, b, test_train_ratio=0.0):
    """Mean of a - b over paired values, its (corrected) standard error, the t-test p-value and the
    verdict; ``test_train_ratio`` > 0: Nadeau-Bengio's correction for overlapping training sets.

    Pairs where either value is missing (None or not finite) are dropped; with fewer than two pairs
    left no test is made.
    """
    pairs = [(x, y) for x, y in zip(a, b) if _usable(x) and _usable(y)]
    result = {"n_pairs": len(pairs), "mean": None, "sd": None, "sem": None, "p_value": None, "significant": None,
              "test_train_ratio": test_train_ratio}
    if not pairs:
        return result
    diff = np.array([x - y for x, y in pairs], dtype=np.float64)
    result["mean"] = float(diff.mean())
    if len(diff) < 2:
        return result
    sd = float(diff.std(ddof=1))
    result["sd"] = sd
    result["sem"] = float(sd * np.sqrt(1.0 / len(diff) + test_train_ratio))
    if np.allclose(diff, diff[0], rtol=1e-12, atol=1e-12):  # no spread: the t statistic is undefined
        result["p_value"] = 1.0 if np.isclose(diff[0], 0.0, atol=1e-12) else 0.0
    else:
        t = result["mean"] / result["sem"]
        result["p_value"] = float(2.0 * stats.t.sf(abs(t), len(diff) - 1))
    result["significant"] = bool(result["p_value"] < ALPHA)
    return result


def log_ratio(a, b, test_train_ratio=0.0):
    """paired_difference of log(a) and log(b), with the mean ratio a/b = exp(mean) added: limits and
    rejections compare by ratio, not by difference."""
    result = paired_difference(_log(a), _log(b), test_train_ratio)
    result["ratio"] = float(np.exp(result["mean"])) if result["mean"] is not None else None
    return result


def holm(p_values):
    """Holm's step-down adjusted p-values (None stays None): significant at family-wise error ALPHA
    when the adjusted value is < ALPHA."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted, running = [None] * len(p_values), 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = running
    return adjusted


def _usable(value):
    return value is not None and np.isfinite(value)


def _log(values):
    return [np.log(v) if _usable(v) and v > 0 else None for v in values]
