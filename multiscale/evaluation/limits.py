"""Expected upper limits on the signal strength with pyhf (asymptotic CLs, HistFactory model).

The model of a histogram (one channel, ``n`` bins):

* ``signal``: the expected signal yields s_k, scaled by the signal strength mu (``normfactor``);
* ``background``: the expected background yields b_k with a ``staterror`` modifier, the MC
  statistical uncertainty sqrt(sumw2_k) of each bin (Barlow-Beeston lite; bins with sumw2 = 0 get
  their parameter fixed by pyhf). No other systematic uncertainty.

The expected limit is computed on the background-only Asimov data set (n_k = b_k, auxiliary data
at nominal): the observed CLs limit on these data is the median expected limit, and pyhf returns
the +-1 sigma and +-2 sigma expected band with it (``toms748_scan``: root finding of
CLs(mu) = 1 - CL, test statistic q~_mu, asymptotic formulae). mu_up is relative to the signal in
the histogram, so the limit on the signal cross section is mu_up * xsec_fb (the ``xsec_fb`` of the
signal events: sigma x BR as generated).

Fits: pyhf's default scipy (SLSQP) fits stop at their starting point, claiming success, when a bin
holds more than ~1e5-1e6 expected events with a staterror parameter; MINUIT (``iminuit``) copes, and
is used when installed. Bins that carry a negligible share of the sensitivity (the bulk background
bin of a classifier histogram) are left out of the fit.

Histograms of the classifier score (:func:`score_histograms`) start from bins of equal signal
efficiency and merge neighbours from the high-score end until every bin holds background with at
least ``MIN_BACKGROUND_EVENTS`` effective MC events and a positive yield: a bin of background
resting on a few weighted events would dominate the limit with an unreliable b_k.
"""

import warnings
from contextlib import contextmanager

import numpy as np
import pyhf
from scipy.stats import norm

from .io import PredictionError
from .metrics import MIN_BACKGROUND_EVENTS, effective_events, enough_events
from .yields import yield_weights

DEFAULT_CL = 0.95
BAND_KEYS = ("-2sigma", "-1sigma", "median", "+1sigma", "+2sigma")  # pyhf's order of the expected set
_MU_MAX_GROWTH = 1e6  # the POI range may grow to this many times the rough guess
# bins below this fraction of the total sensitivity sum(s^2 / (b + sumw2)) are left out of the fit:
# dropping them weakens the limit by less than about half that fraction each
NEGLIGIBLE_SENSITIVITY = 1e-4
# above this many background events per bin (with MC stat uncertainty) pyhf's scipy fits are unreliable
LARGE_BIN = 1e5


def histfactory_model(signal_yields, background_yields, background_sumw2=None, mu_max=10.0, mu_init=1.0):
    """pyhf model: signal x mu (normfactor, bounds [0, mu_max], starting value mu_init) + background with
    staterror from sumw2 (no staterror when sumw2 is None or zero everywhere)."""
    background = {"name": "background", "data": [float(b) for b in background_yields], "modifiers": []}
    if background_sumw2 is not None and np.any(np.asarray(background_sumw2) > 0):
        background["modifiers"].append(
            {"name": "mc_stat", "type": "staterror", "data": [float(np.sqrt(v)) for v in background_sumw2]}
        )
    signal = {
        "name": "signal",
        "data": [float(s) for s in signal_yields],
        "modifiers": [{"name": "mu", "type": "normfactor", "data": None}],
    }
    spec = {
        "channels": [{"name": "signal_region", "samples": [signal, background]}],
        "parameters": [{"name": "mu", "bounds": [[0.0, float(mu_max)]], "inits": [float(mu_init)]}],
    }
    return pyhf.Model(spec, poi_name="mu")


def _check_yields(signal, background, sumw2):
    if not (len(signal) == len(background) and (sumw2 is None or len(sumw2) == len(background))):
        raise ValueError("signal, background and sumw2 need one entry per bin")
    if len(background) == 0 or np.any(background <= 0):
        raise ValueError(f"every bin needs a positive background yield, got {background.tolist()}")
    if np.any(signal < 0) or not signal.sum() > 0:
        raise ValueError(f"the signal yields must be >= 0 and not all 0, got {signal.tolist()}")


def _sensitivity(signal, background, sumw2):
    """Per bin, the Gaussian sensitivity s_k^2 / (b_k + sumw2_k) (its sum is 1 / sigma_mu^2)."""
    return signal**2 / (background + (0.0 if sumw2 is None else sumw2))


def _limit_scale(sensitivity):
    """A rough Gaussian guess of the limit, 2 / sqrt(sum of the sensitivities): only the starting
    bracket of pyhf's root finding (evaluating CLs far beyond the limit is numerically fragile)."""
    return 2.0 / np.sqrt(np.sum(sensitivity))


def default_optimizer(background, background_sumw2=None):
    """"minuit" when a bin holds more than LARGE_BIN background events with an MC statistical
    parameter (and iminuit is installed), else "scipy".

    pyhf's default scipy SLSQP fits stop at the starting point, claiming success, when a bin holds
    more than ~1e5-1e6 expected events together with a staterror parameter; MINUIT copes, but takes
    seconds per limit, so it runs only where it is needed.
    """
    if background_sumw2 is None or not np.any((np.asarray(background) > LARGE_BIN) & (np.asarray(background_sumw2) > 0)):
        return "scipy"
    try:
        import iminuit  # noqa: F401
    except ImportError:
        return "scipy"
    return "minuit"


@contextmanager
def _pyhf_optimizer(name):
    """Run pyhf with the optimizer ``name`` ("scipy" or "minuit"), restoring the previous one after."""
    tensorlib, previous = pyhf.get_backend()
    pyhf.set_backend(tensorlib, name)
    try:
        yield
    finally:
        pyhf.set_backend(tensorlib, previous)


def _scan(signal, background, sumw2, cl, guess):
    """pyhf's toms748 scan for the expected set, POI range growing when the scan steps beyond it."""
    mu_max = 100.0 * guess
    while True:
        model = histfactory_model(signal, background, sumw2, mu_max=mu_max, mu_init=guess)
        asimov = background.tolist() + model.config.auxdata  # background only, nuisances nominal
        try:
            # probes where the Asimov q_mu is 0 give 0/0 in pyhf's CLs (numpy warnings, no harm: the
            # scan moves on, and expected_limit checks the band it returns)
            with np.errstate(divide="ignore", invalid="ignore"):
                _, expected = pyhf.infer.intervals.upper_limits.toms748_scan(
                    asimov, model, 0.2 * guess, 5.0 * guess, level=1.0 - cl, test_stat="qtilde"
                )
            return [float(value) for value in expected]
        except ValueError as err:  # the scan stepped beyond the POI bounds: widen them
            if "outside of its bounds" not in str(err) or mu_max > _MU_MAX_GROWTH * guess:
                raise
            mu_max *= 10.0


def _fit(signal, background, sumw2, fitted, sensitivity, cl, optimizer):
    """The expected set of the bins ``fitted`` and the optimizer that made it."""
    signal_fit, background_fit = signal[fitted], background[fitted]
    sumw2_fit = None if sumw2 is None else sumw2[fitted]
    optimizer = optimizer or default_optimizer(background_fit, sumw2_fit)
    if optimizer == "scipy" and sumw2_fit is not None and np.any((background_fit > LARGE_BIN) & (sumw2_fit > 0)):
        warnings.warn(
            f"a fitted bin holds more than {LARGE_BIN:g} background events with an MC stat uncertainty: pyhf's "
            "scipy fits may stop early there and misplace the limit; install iminuit for optimizer='minuit'",
            stacklevel=3,
        )
    with _pyhf_optimizer(optimizer):
        return _scan(signal_fit, background_fit, sumw2_fit, cl, _limit_scale(sensitivity[fitted])), optimizer


def expected_limit(signal_yields, background_yields, background_sumw2=None, cl=DEFAULT_CL, optimizer=None):
    """Expected CL upper limit on the signal strength mu (background-only Asimov data, CLs, q~_mu).

    Returns {cl, mu_up (median), band {-2sigma, -1sigma, median, +1sigma, +2sigma}, n_bins,
    fitted_bins, S, B, optimizer}. Bins carrying less than ``NEGLIGIBLE_SENSITIVITY`` of the total
    sensitivity (sum of s^2 / (b + sumw2)) are left out of the fit (``fitted_bins``: the others):
    the bulk background bin of a classifier histogram changes nothing but upsets the fits. When a
    fit still fails, the least sensitive bin is dropped and the fit repeated
    (``dropped_after_failed_fit``): the limit of fewer bins is weaker, never stronger.
    ``optimizer``: pyhf's "scipy" or "minuit" (default: :func:`default_optimizer`).
    """
    signal = np.asarray(signal_yields, dtype=np.float64)
    background = np.asarray(background_yields, dtype=np.float64)
    sumw2 = None if background_sumw2 is None else np.asarray(background_sumw2, dtype=np.float64)
    _check_yields(signal, background, sumw2)
    sensitivity = _sensitivity(signal, background, sumw2)
    fitted = np.flatnonzero(sensitivity >= NEGLIGIBLE_SENSITIVITY * sensitivity.sum())
    dropped = []
    while True:
        try:
            expected, optimizer_used = _fit(signal, background, sumw2, fitted, sensitivity, cl, optimizer)
            break
        except (pyhf.exceptions.FailedMinimization, ValueError):
            # a fit that does not converge (typically MC stat. uncertainties far above the signal):
            # drop the least sensitive bin and fit again; the limit gets weaker, never stronger
            if len(fitted) == 1:
                raise
            weakest = fitted[np.argmin(sensitivity[fitted])]
            dropped.append(int(weakest))
            fitted = fitted[fitted != weakest]
    optimizer = optimizer_used
    if not (np.all(np.isfinite(expected)) and np.all(np.diff(expected) >= 0)):
        raise RuntimeError(f"pyhf returned an invalid expected band {expected} (optimizer {optimizer})")
    band = dict(zip(BAND_KEYS, expected))
    return {
        "cl": float(cl),
        "mu_up": band["median"],
        "band": band,
        "n_bins": len(background),
        "fitted_bins": fitted.tolist(),
        "dropped_after_failed_fit": dropped,
        "S": float(signal.sum()),
        "B": float(background.sum()),
        "optimizer": optimizer,
    }


def expected_significance(signal_yields, background_yields, background_sumw2=None, optimizer=None):
    """Median expected discovery significance Z0 of the signal at mu = 1: the q0 test of mu = 0 on the
    signal-plus-background Asimov data (n_k = s_k + b_k), asymptotic, Z0 = Phi^-1(1 - p0)."""
    signal = np.asarray(signal_yields, dtype=np.float64)
    background = np.asarray(background_yields, dtype=np.float64)
    sumw2 = None if background_sumw2 is None else np.asarray(background_sumw2, dtype=np.float64)
    _check_yields(signal, background, sumw2)
    model = histfactory_model(signal, background, sumw2)
    asimov = (signal + background).tolist() + model.config.auxdata
    with _pyhf_optimizer(optimizer or default_optimizer(background, sumw2)):
        p0 = float(pyhf.infer.hypotest(0.0, asimov, model, test_stat="q0"))
    return float(norm.isf(p0))


def merge_from_top(background, background_sumw2, min_effective_events=MIN_BACKGROUND_EVENTS):
    """First (lowest) original bin of each merged bin, ascending.

    Walking down from the highest bin, bins are added to the current merged bin until its background
    has N_eff >= min_effective_events and a positive yield; a remainder at the low end that never
    qualifies joins the lowest merged bin (all bins become one when none qualifies).
    """
    starts, total, total_sumw2 = [], 0.0, 0.0
    for k in reversed(range(len(background))):
        total, total_sumw2 = total + background[k], total_sumw2 + background_sumw2[k]
        if total > 0 and enough_events(effective_events(total, total_sumw2), min_effective_events):
            starts.append(k)
            total, total_sumw2 = 0.0, 0.0
    if starts:
        starts[-1] = 0
    else:
        starts = [0]
    return sorted(starts)


def binned_yields(bin_index, edges, is_signal, yields, min_effective_events=MIN_BACKGROUND_EVENTS):
    """Signal and background yields and background sumw2 per bin, bins merged by :func:`merge_from_top`.

    ``bin_index``: each event's bin in 0..len(edges)-2, or -1 for events outside the histogram.
    Returns {edges, signal, background, background_sumw2, min_effective_events,
    background_effective_events, low_statistics} (low_statistics: some bin still has background
    N_eff < min_effective_events or no background, i.e. all bins together do not have enough).
    """
    n_bins = len(edges) - 1
    inside = np.asarray(bin_index) >= 0
    index, sig, y = np.asarray(bin_index)[inside], np.asarray(is_signal, dtype=bool)[inside], np.asarray(yields)[inside]
    signal = np.bincount(index[sig], weights=y[sig], minlength=n_bins)
    background = np.bincount(index[~sig], weights=y[~sig], minlength=n_bins)
    sumw2 = np.bincount(index[~sig], weights=np.square(y[~sig]), minlength=n_bins)
    starts = merge_from_top(background, sumw2, min_effective_events)
    merged = np.searchsorted(starts, np.arange(n_bins), side="right") - 1  # original bin -> merged bin

    def merge(values):
        return np.bincount(merged, weights=values, minlength=len(starts))

    result = {
        "edges": [float(edges[k]) for k in starts] + [float(edges[-1])],
        "signal": merge(signal),
        "background": merge(background),
        "background_sumw2": merge(sumw2),
        "min_effective_events": min_effective_events,
    }
    result["background_effective_events"] = effective_events(result["background"], result["background_sumw2"])
    result["low_statistics"] = not bool(
        np.all(enough_events(result["background_effective_events"], min_effective_events))
        and np.all(result["background"] > 0)
    )
    return result


def equal_signal_efficiency_edges(signal_score, signal_yields, n_bins):
    """Inner bin edges splitting the signal yield into ``n_bins`` equal parts (duplicates dropped)."""
    order = np.argsort(signal_score, kind="stable")
    score = np.asarray(signal_score, dtype=np.float64)[order]
    fraction_below = np.cumsum(np.asarray(signal_yields, dtype=np.float64)[order])
    fraction_below /= fraction_below[-1]
    wanted = np.arange(1, n_bins) / n_bins
    # the first event whose cumulative fraction exceeds k/n starts bin k
    inner = score[np.minimum(np.searchsorted(fraction_below, wanted, side="right"), len(score) - 1)]
    return np.unique(inner)


def score_histograms(prediction, luminosity_fb, n_bins=10, min_effective_events=MIN_BACKGROUND_EVENTS):
    """Histograms of ``score_is_signal`` for a limit (see :func:`binned_yields` for the result).

    ``n_bins`` bins of equal expected signal yield, merged from the high-score end until every bin
    keeps background N_eff >= min_effective_events and a positive background yield. A bin k holds
    edges[k] <= score < edges[k+1], the last one its upper edge (the highest score) too.
    """
    yields = yield_weights(prediction, luminosity_fb)
    score, is_signal = prediction.score, prediction.is_signal
    inner = equal_signal_efficiency_edges(score[is_signal], yields[is_signal], n_bins)
    inner = inner[(inner > score.min()) & (inner <= score.max())]  # no empty outer bins
    edges = np.r_[score.min(), inner, score.max()]
    bin_index = np.searchsorted(inner, score, side="right")
    return binned_yields(bin_index, edges, is_signal, yields, min_effective_events)


def signal_cross_section(prediction):
    """The ``xsec_fb`` of the signal events (fb); raises when they disagree (mixed mass points)."""
    xsec = np.unique(prediction.arrays["xsec_fb"][prediction.is_signal].astype(np.float64))
    if not np.allclose(xsec, xsec[0], rtol=1e-6):
        raise PredictionError(f"{prediction.path}: the signal events have several xsec_fb: {xsec.tolist()}")
    return float(xsec[0])


def limit_from_histograms(histograms, signal_xsec_fb, cl=DEFAULT_CL, optimizer=None, mc_stat=True):
    """:func:`expected_limit` of ``histograms`` plus the limit on sigma x BR (fb) = mu_up x signal_xsec_fb.

    ``mc_stat=False`` leaves the background MC statistical uncertainty out: the limit an infinite MC
    sample would give, to tell the physics from the MC statistics. None-valued limits with a
    ``note`` when the histogram has no signal, a bin without background, or the fit fails.
    """
    signal, background = histograms["signal"], histograms["background"]
    result = {"histograms": histograms, "signal_xsec_fb": float(signal_xsec_fb), "mc_stat": mc_stat}
    none = {"mu_up": None, "band": None, "xsec_up_fb": None, "xsec_band_fb": None}
    if not signal.sum() > 0 or np.any(background <= 0):
        return {**result, **none, "note": "no limit: no signal selected or a bin without background"}
    sumw2 = histograms["background_sumw2"] if mc_stat else None
    try:
        limit = expected_limit(signal, background, sumw2, cl, optimizer)
    except (pyhf.exceptions.FailedMinimization, RuntimeError, ValueError) as err:
        return {**result, **none, "note": f"no limit: the pyhf fit failed ({' '.join(str(err).split())[:120]})"}
    if histograms["low_statistics"]:
        limit["note"] = (
            f"the background rests on fewer than {histograms['min_effective_events']} effective MC events"
        )
    return {
        **result,
        **limit,
        "xsec_up_fb": limit["mu_up"] * signal_xsec_fb,
        "xsec_band_fb": {key: value * signal_xsec_fb for key, value in limit["band"].items()},
    }


def classifier_limit(prediction, luminosity_fb, n_bins=10, cl=DEFAULT_CL, min_effective_events=MIN_BACKGROUND_EVENTS,
                     optimizer=None, mc_stat=True):
    """Expected limit on mu and on sigma x BR from the binned classifier score (:func:`score_histograms`)."""
    histograms = score_histograms(prediction, luminosity_fb, n_bins, min_effective_events)
    return limit_from_histograms(histograms, signal_cross_section(prediction), cl, optimizer, mc_stat)
