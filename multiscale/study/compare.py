"""Paired comparisons over repeated trainings.

Two methods evaluated on the same test folds give one difference per fold; the folds differ in
their training and test events, so the spread of the differences holds the training-to-training
and the test-sample fluctuations at once. The mean difference is quoted with its standard error
and a two-sided paired t-test (scipy): "significant" means p < ``ALPHA``.
"""

import numpy as np
from scipy import stats

ALPHA = 0.05


def paired_difference(a, b):
    """Mean of a - b over paired values, its standard error, the t-test p-value and the verdict.

    Pairs where either value is missing (None or not finite) are dropped; with fewer than two pairs
    left no test is made.
    """
    pairs = [(x, y) for x, y in zip(a, b) if _usable(x) and _usable(y)]
    result = {"n_pairs": len(pairs), "mean": None, "sem": None, "p_value": None, "significant": None}
    if not pairs:
        return result
    diff = np.array([x - y for x, y in pairs], dtype=np.float64)
    result["mean"] = float(diff.mean())
    if len(diff) < 2:
        return result
    result["sem"] = float(diff.std(ddof=1) / np.sqrt(len(diff)))
    if np.allclose(diff, diff[0], rtol=1e-12, atol=1e-12):  # no spread: the t statistic is undefined
        result["p_value"] = 1.0 if np.isclose(diff[0], 0.0, atol=1e-12) else 0.0
    else:
        result["p_value"] = float(stats.ttest_rel([x for x, _ in pairs], [y for _, y in pairs]).pvalue)
    result["significant"] = bool(result["p_value"] < ALPHA)
    return result


def log_ratio(a, b):
    """paired_difference of log(a) and log(b), with the mean ratio a/b = exp(mean) added: limits and
    rejections compare by ratio, not by difference."""
    result = paired_difference(_log(a), _log(b))
    result["ratio"] = float(np.exp(result["mean"])) if result["mean"] is not None else None
    return result


def _usable(value):
    return value is not None and np.isfinite(value)


def _log(values):
    return [np.log(v) if _usable(v) and v > 0 else None for v in values]
