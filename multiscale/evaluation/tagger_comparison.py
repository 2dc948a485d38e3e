"""Taggers compared as taggers are compared: background rejection at fixed signal efficiency, its
uncertainty from the test events (a group bootstrap), and paired tests over training repeats with
their power from the noncentral t.

**Rejection.** 1/eps_B at a fixed eps_S (30% and 50%), both efficiencies fractions of the events'
physical weights (the yields of ``yields.yield_weights``), from the ROC of ``metrics`` (sklearn's
``roc_curve``): :func:`rejections`.

**Uncertainty from the test events.** The truth-tag copies of one generated event are one MC event:
a bootstrap that drew copies independently would treat the four copies of an event as four events
and come out about sqrt(4) too narrow. :func:`bootstrap_rejections` draws whole events (``group``:
``yields.event_index``), separately in each stratum (by default signal and background; give the
sample, process x phase space, to keep each sample's composition as its cross section fixes it: the
weights of a stratum are renormalised to its total, as ``yield_weights`` normalises a sample). Every
tagger evaluated on the same test entries sees the same resampled events in a replicate, so a
rejection *ratio* between two taggers gets the paired uncertainty (:func:`ratio_interval`), much
smaller than the two rejections' own when the taggers are correlated.

**Repeats.** Repeat r of tagger A against repeat r of tagger B, one log rejection ratio per pair
(:func:`compare_repeats`). ``repeats=INDEPENDENT``: each repeat with its own seeds and its own
training events, the pairs independent: the plain paired t-test. ``repeats=SHARED``: repeats whose
training sets overlap (k-fold: each two share k - 2 of their k - 1 training folds) are positively
correlated; the Nadeau-Bengio correction (``study.compare``) inflates the variance of the mean from
s^2/J to (1/J + n_test/n_train) s^2.

**Power.** The t statistic of J pairs whose differences have mean delta and spread s follows the
noncentral t with J - 1 degrees of freedom and noncentrality delta / sem, sem = s sqrt(1/J + c)
(c = n_test/n_train, 0 for independent repeats); the power of the two-sided test at ALPHA is
P(|T| > t_{1-ALPHA/2}) under it (:func:`power_of_t_test`). The sum-of-quantiles shortcut
(t_{1-ALPHA/2} + t_power) x sem promises 80% where the
noncentral t gives 77% at 3 pairs (73% at 2, 79% at 5). :func:`detectable_ratio` and
:func:`pairs_needed` invert the exact power; :func:`scale_needed` says how many times the events would reach a
ratio when more pairs cannot; :func:`power` is the power analysis of the
mass scan's paired tests (``study.comparisons``).
"""

import numpy as np
from scipy import optimize, stats

from ..study.compare import ALPHA, POWER, log_ratio
from .io import PredictionError
from .metrics import Roc, rejection_at, roc, working_point
from .yields import EVENT_IDENTITY, event_index, yield_weights

SIGNAL_EFFICIENCIES = (0.3, 0.5)
N_BOOTSTRAP = 1000
INDEPENDENT, SHARED = "independent", "shared"
INTERVAL = 0.6827  # central quantiles of the bootstrap: a +-1 sigma interval
MAX_PAIRS = 10_000


# --- one prediction ----------------------------------------------------------------------------------------------


def rejections(is_signal, score, weight, group=None, efficiencies=SIGNAL_EFFICIENCIES):
    """{eps_S: metrics.working_point} at each signal efficiency: rejection, eps_B and the N_eff of the
    background the cut keeps (the copies of one ``group`` counted as one MC event)."""
    curve = roc(is_signal, score, weight, group)
    return {float(eff): working_point(curve, eff) for eff in efficiencies}


def common_test_sample(predictions, luminosity_fb):
    """(is_signal, yield weights, event groups, {name: score}) of ``predictions`` ({name: Prediction}),
    which must hold the same test entries in the same order (taggers evaluated on one test sample)."""
    names = list(predictions)
    first = predictions[names[0]]
    identity = [b for b in ("is_signal", *EVENT_IDENTITY, "fj1_nbtag", "fj2_nbtag") if first.has(b)]
    for name in names[1:]:
        other = predictions[name]
        if len(other) != len(first) or not all(
                other.has(b) and np.array_equal(other.arrays[b], first.arrays[b]) for b in identity):
            raise PredictionError(f"{other.path}: not the test entries of {first.path} in the same order: "
                                  "a paired comparison needs both taggers evaluated on the same test sample")
    scores = {name: predictions[name].score for name in names}
    return first.is_signal, yield_weights(first, luminosity_fb), event_index(first), scores


# --- bootstrap over test events ------------------------------------------------------------------------------------


def _groups(is_signal, group, stratum):
    """(group index of every entry, stratum of every group); raises where one event's copies disagree."""
    _, entry_group = np.unique(np.asarray(group), return_inverse=True)
    entry_group = entry_group.ravel()
    stratum = np.asarray(is_signal if stratum is None else stratum)
    n_groups = entry_group.max(initial=-1) + 1
    group_stratum = np.empty(n_groups, dtype=stratum.dtype)
    group_stratum[entry_group] = stratum
    group_signal = np.zeros(n_groups, dtype=bool)
    group_signal[entry_group] = is_signal
    if np.any(group_stratum[entry_group] != stratum) or np.any(group_signal[entry_group] != is_signal):
        raise ValueError("the copies of one event (one group) must share is_signal and the stratum")
    return entry_group, group_stratum


def _resampled_multiplicity(strata_members, n_groups, rng):
    """How often each group is drawn: per stratum (``strata_members``: its groups) as many draws, with
    replacement, as it has groups."""
    multiplicity = np.zeros(n_groups)
    for members in strata_members:
        multiplicity += np.bincount(rng.choice(members, size=len(members)), minlength=n_groups)
    return multiplicity


class _SortedScore:
    """One tagger's entries sorted by descending score once; the ROC of any reweighting is then two
    cumulative sums (the points of roc_curve with drop_intermediate=False: one per distinct score)."""

    def __init__(self, is_signal, score):
        score = np.asarray(score, dtype=np.float64)
        self.order = np.argsort(-score, kind="stable")
        self.signal = np.asarray(is_signal, dtype=bool)[self.order]
        sorted_score = score[self.order]
        self.last_of_score = np.flatnonzero(np.r_[sorted_score[1:] != sorted_score[:-1], True])

    def curve(self, weight):
        w = np.asarray(weight, dtype=np.float64)[self.order]
        s = np.r_[0.0, np.cumsum(np.where(self.signal, w, 0.0))[self.last_of_score]]
        b = np.r_[0.0, np.cumsum(np.where(self.signal, 0.0, w))[self.last_of_score]]
        return Roc(s / s[-1], b / b[-1], np.empty(0), np.empty(0))


def bootstrap_rejections(scores, is_signal, weight, group, efficiencies=SIGNAL_EFFICIENCIES,
                         n_bootstrap=N_BOOTSTRAP, seed=0, stratum=None):
    """{name: array (n_bootstrap, len(efficiencies)) of rejections} of the taggers ``scores`` ({name:
    score per entry}, all on the entries of ``is_signal``, ``weight`` and ``group``), every replicate
    drawing whole groups (the copies of one event together) within each ``stratum`` (default: signal
    and background), the same draw for every tagger (paired)."""
    is_signal = np.asarray(is_signal, dtype=bool)
    weight = np.asarray(weight, dtype=np.float64)
    entry_group, group_stratum = _groups(is_signal, group, stratum)
    strata_members = [np.flatnonzero(group_stratum == value) for value in np.unique(group_stratum)]
    entry_strata = [np.isin(entry_group, members) for members in strata_members]
    stratum_totals = [weight[entries].sum() for entries in entry_strata]
    sorted_scores = {name: _SortedScore(is_signal, score) for name, score in scores.items()}
    rng = np.random.default_rng(seed)
    out = {name: np.empty((n_bootstrap, len(efficiencies))) for name in scores}
    for r in range(n_bootstrap):
        resampled = weight * _resampled_multiplicity(strata_members, len(group_stratum), rng)[entry_group]
        for entries, total in zip(entry_strata, stratum_totals):  # a stratum keeps its total, as a sample its sigma x A
            drawn = resampled[entries].sum()
            if drawn != 0:
                resampled[entries] *= total / drawn
        for name, tagger in sorted_scores.items():
            curve = tagger.curve(resampled)
            out[name][r] = [rejection_at(curve, eff) for eff in efficiencies]
    return out


def _summary(log_values):
    """sd (None when some replicate is infinite or undefined) and the central INTERVAL of log values."""
    finite = np.isfinite(log_values)
    defined = ~np.isnan(log_values)
    q = (1.0 - INTERVAL) / 2.0
    low, high = (np.quantile(log_values[defined], [q, 1.0 - q], method="inverted_cdf")
                 if defined.any() else (np.nan, np.nan))
    return {"sd_log": float(np.std(log_values, ddof=1)) if finite.all() and len(log_values) > 1 else None,
            "interval": [float(np.exp(low)), float(np.exp(high))],
            "n_infinite": int((~finite).sum())}


def rejection_interval(replicates, efficiencies=SIGNAL_EFFICIENCIES):
    """{eps_S: {sd_log, interval, n_infinite}}: the spread of log rejection over the replicates of one
    tagger (``bootstrap_rejections``), its central 68% interval as rejections, and how many replicates
    kept no background."""
    with np.errstate(divide="ignore"):
        logs = np.log(np.asarray(replicates))
    return {float(eff): _summary(logs[:, k]) for k, eff in enumerate(efficiencies)}


def ratio_interval(replicates_a, replicates_b, efficiencies=SIGNAL_EFFICIENCIES):
    """The same for the rejection ratio A/B, replicate by replicate (paired: the same resampled events)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(np.asarray(replicates_a)) - np.log(np.asarray(replicates_b))
    return {float(eff): _summary(logs[:, k]) for k, eff in enumerate(efficiencies)}


# --- repeats paired, and the power of the test ---------------------------------------------------------------------


def _correction(repeats, test_train_ratio):
    """The Nadeau-Bengio n_test/n_train of the design ``repeats`` (0 for independent repeats)."""
    if repeats == INDEPENDENT:
        if test_train_ratio:
            raise ValueError("independent repeats share no training events: give no test_train_ratio")
        return 0.0
    if repeats == SHARED:
        if not test_train_ratio or test_train_ratio <= 0:
            raise ValueError("repeats sharing training events need test_train_ratio = n_test / n_train > 0")
        return float(test_train_ratio)
    raise ValueError(f"repeats must be {INDEPENDENT!r} or {SHARED!r}, got {repeats!r}")


def compare_repeats(rejections_a, rejections_b, repeats, test_train_ratio=None):
    """Repeat r of A against repeat r of B: the paired t-test of the log rejection ratios
    (``study.compare.log_ratio``: n_pairs, mean, sd, sem, p_value, significant, ratio), its design
    (``repeats``: INDEPENDENT, the plain test; SHARED, Nadeau-Bengio with ``test_train_ratio``) and its
    power (:func:`power`)."""
    correction = _correction(repeats, test_train_ratio)
    test = log_ratio(rejections_a, rejections_b, correction)
    return {**test, "repeats": repeats, **power(test, correction)}


def power_of_t_test(log_ratio_true, sd, n_pairs, test_train_ratio=0.0, alpha=ALPHA):
    """Probability that the two-sided paired t-test at ``alpha`` on ``n_pairs`` pairs of spread ``sd``
    rejects, when the true mean log ratio is ``log_ratio_true``: the noncentral t."""
    dof = n_pairs - 1
    noncentrality = abs(log_ratio_true) / (sd * np.sqrt(1.0 / n_pairs + test_train_ratio))
    critical = stats.t.isf(alpha / 2.0, dof)
    # the lower tail P(T < -c) as P(T > c) at -noncentrality: scipy's nct.cdf gives NaN far in that tail
    return float(stats.nct.sf(critical, dof, noncentrality) + stats.nct.sf(critical, dof, -noncentrality))


def detectable_ratio(sd, n_pairs, test_train_ratio=0.0, alpha=ALPHA, power=POWER):
    """The smallest true rejection ratio (> 1) that ``n_pairs`` pairs of log-ratio spread ``sd`` detect
    with probability ``power``; None without a spread or with fewer than two pairs."""
    if sd is None or n_pairs < 2:
        return None
    if sd == 0:
        return 1.0
    sem = sd * np.sqrt(1.0 / n_pairs + test_train_ratio)
    high = sem
    while power_of_t_test(high, sd, n_pairs, test_train_ratio, alpha) < power:
        high *= 2.0
    delta = optimize.brentq(lambda d: power_of_t_test(d, sd, n_pairs, test_train_ratio, alpha) - power, 0.0, high,
                            xtol=1e-12 * sem)
    return float(np.exp(delta))


def pairs_needed(sd, ratio, test_train_ratio=0.0, alpha=ALPHA, power=POWER, max_pairs=MAX_PAIRS):
    """The fewest pairs that detect the rejection ratio ``ratio`` with probability ``power``; None when
    even ``max_pairs`` do not (with shared training events the variance of the mean has a floor:
    then only more events, a smaller sd, help)."""
    if sd is None or ratio is None or ratio <= 0 or ratio == 1:
        return None
    delta = abs(np.log(ratio))
    if sd == 0:
        return 2
    if power_of_t_test(delta, sd, max_pairs, test_train_ratio, alpha) < power:
        return None
    low, high = 1, max_pairs  # the power grows with the pairs: bisect for the first that reaches it
    while high - low > 1:
        middle = (low + high) // 2
        if power_of_t_test(delta, sd, middle, test_train_ratio, alpha) >= power:
            high = middle
        else:
            low = middle
    return high


def scale_needed(sd, n_pairs, ratio, test_train_ratio=0.0, alpha=ALPHA, power=POWER):
    """How many times today's events the same ``n_pairs`` pairs would need to detect ``ratio`` at ``power``, if the
    spread of the log ratios falls as 1/sqrt(events) (the test sample's part does; the training's roughly). The
    detectable log ratio is proportional to ``sd`` at fixed pairs (the power depends on delta/sd alone), so the
    factor is (log detectable / log ratio)^2; 1 when today's events suffice."""
    detectable = detectable_ratio(sd, n_pairs, test_train_ratio, alpha, power)
    if detectable is None or ratio is None or ratio <= 1:
        return None
    return float(max(1.0, (np.log(detectable) / np.log(ratio)) ** 2))


def power(test, test_train_ratio):
    """The power analysis of a log-ratio test (``study.compare.log_ratio``'s result), from the
    noncentral t: the smallest ratio today's pairs detect at 80% power, and the pairs a 10% and a 20%
    ratio would need (None: beyond what more pairs can give)."""
    n, sd = test["n_pairs"], test.get("sd")
    return {"detectable_ratio": detectable_ratio(sd, n, test_train_ratio),
            "pairs_for_10_percent": pairs_needed(sd, 1.10, test_train_ratio),
            "pairs_for_20_percent": pairs_needed(sd, 1.20, test_train_ratio),
            "scale_for_20_percent": scale_needed(sd, n, 1.20, test_train_ratio)}
