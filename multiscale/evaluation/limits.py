"""Expected upper limits on the signal strength and discovery significance (asymptotic CLs, HistFactory model).

The model of a histogram (``likelihood.BinnedModel``; one channel, ``n`` bins):

* ``signal``: the expected signal yields s_k, scaled by the signal strength mu;
* ``background``: the expected background yields b_k with the MC statistical uncertainty
  sqrt(sumw2_k) of each bin as a Gaussian-constrained factor (pyhf's ``staterror``, Barlow-Beeston
  lite); optional normalisation systematics (pyhf's ``normsys``) shared by signal and background.

The expected limit is computed on the background-only Asimov data set (n_k = b_k, auxiliary data
at nominal): the CLs limit on these data is the median expected limit, and the +-1 sigma and
+-2 sigma band follows from the same test statistic (Cowan, Cranmer, Gross, Vitells,
arXiv:1007.1727, the formulae pyhf uses): with q~_mu,A the profile-likelihood test statistic on the
Asimov data, the expected CLs at the N sigma quantile is (1 - Phi(sqrt(q~_mu,A) - N)) / Phi(N), so
the band edge N solves sqrt(q~_mu,A(mu)) = N + Phi^-1(1 - (1 - CL) Phi(N)): one monotone root per
edge. q~_mu,A(mu) is profiled exactly at any yield by ``likelihood.profiled_deviance``
(pyhf's own fits stop early when a bin holds ~1e7 events: that module says why); the tests check
it against closed forms from B = 0.1 to 1e10 and against pyhf where pyhf's fits are reliable.
mu_up is relative to the signal in the histogram, so the limit on the signal cross section is
mu_up * xsec_fb (the ``xsec_fb`` of the signal events: sigma x BR as generated).

Histograms of the classifier score (:func:`score_histograms`) start from bins of equal signal
efficiency and merge neighbours from the high-score end until every bin holds background with at
least ``MIN_BACKGROUND_EVENTS`` effective MC events and a positive yield: a bin of background
resting on a few weighted events would dominate the limit with an unreliable b_k. The binning is a
choice: :func:`choose_score_binning` makes it on a validation sample and :func:`histograms_on_binning`
applies it to the test sample (``score_histograms(test, ..., validation=validation)`` does both).
"""

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from .io import PredictionError
from .likelihood import BinnedModel, ProfileError, Systematic, profiled_deviance
from .metrics import MIN_BACKGROUND_EVENTS, effective_events, enough_events
from .yields import event_index, yield_weights

DEFAULT_CL = 0.95
BAND_KEYS = ("-2sigma", "-1sigma", "median", "+1sigma", "+2sigma")
BAND_SIGMAS = (-2, -1, 0, 1, 2)
METHOD = "asymptotic CLs, q~_mu on background-only Asimov data, nuisance parameters profiled exactly"
_MAX_BRACKET_STEPS = 200  # doublings of the POI bracket: 2^200 times the Gaussian guess
_RTOL = 1e-10  # relative precision of each root
# the background normalisation uncertainty of the limits with systematics: +-10%, one nuisance parameter
# for the whole background (a stand-in for an analysis's data-driven normalisation)
BACKGROUND_NORMALISATION = 0.10


def band_targets(cl=DEFAULT_CL):
    """sqrt(q~_mu,A) at each band edge's limit: N + Phi^-1(1 - (1 - CL) Phi(N)), N = -2 ... +2."""
    return {key: n + norm.isf((1.0 - cl) * norm.cdf(n)) for key, n in zip(BAND_KEYS, BAND_SIGMAS)}


def _gaussian_guess(model, target):
    """mu where sqrt(q) reaches ``target`` for Gaussian bins without systematics: the bracket's start."""
    sumw2 = 0.0 if model.background_sumw2 is None else model.background_sumw2
    return target / np.sqrt(np.sum(model.signal**2 / (model.background + sumw2)))


def _solve_sqrt_q(model, target):
    """mu >= 0 with sqrt(q~_mu,A(mu)) = target (q increases with mu from q(0) = 0)."""

    def excess(mu):
        return np.sqrt(profiled_deviance(model, mu)[0]) - target

    high = _gaussian_guess(model, target)
    for _ in range(_MAX_BRACKET_STEPS):
        if excess(high) > 0:
            break
        high *= 2.0
    else:
        raise ProfileError(f"q~_mu,A stays below {target ** 2:.3g} up to mu = {high:.3g}: no limit")
    low = high / 2.0
    while low > 0 and excess(low) > 0:
        low /= 2.0
    return brentq(excess, low, high, xtol=1e-300, rtol=_RTOL)


def expected_limit(signal_yields, background_yields, background_sumw2=None, cl=DEFAULT_CL, systematics=()):
    """Expected CL upper limit on the signal strength mu (background-only Asimov data, CLs, q~_mu).

    Returns {cl, mu_up (median), band {-2sigma, -1sigma, median, +1sigma, +2sigma}, n_bins, S, B,
    method}. ``systematics``: ``likelihood.Systematic`` nuisance parameters. Raises ValueError for
    impossible yields and ``likelihood.ProfileError`` when the limit cannot be computed reliably.
    """
    model = BinnedModel(signal_yields, background_yields, background_sumw2, tuple(systematics))
    band = {key: _solve_sqrt_q(model, target) for key, target in band_targets(cl).items()}
    values = [band[key] for key in BAND_KEYS]
    if not (np.all(np.isfinite(values)) and np.all(np.diff(values) > 0)):
        raise ProfileError(f"the expected band {values} is not increasing")
    return {
        "cl": float(cl),
        "mu_up": band["median"],
        "band": band,
        "n_bins": len(model.background),
        "S": float(model.signal.sum()),
        "B": float(model.background.sum()),
        "method": METHOD,
    }


def expected_significance(signal_yields, background_yields, background_sumw2=None, systematics=()):
    """Median expected discovery significance Z0 of the signal at mu = 1: sqrt(q0) of the test of
    mu = 0 on the signal-plus-background Asimov data (n_k = s_k + b_k), asymptotic."""
    model = BinnedModel(signal_yields, background_yields, background_sumw2, tuple(systematics))
    return float(np.sqrt(profiled_deviance(model, 0.0, mu_asimov=1.0)[0]))


def merge_from_top(background, background_sumw2, min_background_events=MIN_BACKGROUND_EVENTS, range_sumw2=None):
    """First (lowest) original bin of each merged bin, ascending.

    Walking down from the highest bin, bins are added to the current merged bin until its background
    has N_eff >= min_background_events and a positive yield; a remainder at the low end that never
    qualifies joins the lowest merged bin (all bins become one when none qualifies).
    ``range_sumw2(lo, hi)``: the sumw2 of bins lo..hi-1 merged, when the copies of one event can fall
    into several bins (default: the sum of the bins' sumw2).
    """
    if range_sumw2 is None:
        def range_sumw2(lo, hi):
            return float(np.sum(background_sumw2[lo:hi]))

    starts, total, top = [], 0.0, len(background)
    for k in reversed(range(len(background))):
        total += background[k]
        if total > 0 and enough_events(effective_events(total, range_sumw2(k, top)), min_background_events):
            starts.append(k)
            total, top = 0.0, k
    if starts:
        starts[-1] = 0
    else:
        starts = [0]
    return sorted(starts)


def per_bin_sumw2(bin_index, yields, n_bins, event=None):
    """Per bin (``bin_index`` in 0..n_bins-1 for each entry), the sum over events of (the event's yield in
    the bin)^2: the copies of one ``event`` (yields.event_index) in a bin are summed before squaring."""
    bin_index, yields = np.asarray(bin_index, dtype=np.int64), np.asarray(yields, dtype=np.float64)
    if event is None:
        return np.bincount(bin_index, weights=np.square(yields), minlength=n_bins)
    event = np.unique(np.asarray(event), return_inverse=True)[1].ravel()
    n_events = int(event.max(initial=-1)) + 1
    pairs, pair_of_entry = np.unique(bin_index * n_events + event, return_inverse=True)
    per_pair = np.bincount(pair_of_entry.ravel(), weights=yields, minlength=len(pairs))
    return np.bincount(pairs // n_events, weights=np.square(per_pair), minlength=n_bins)


def binned_yields(bin_index, edges, is_signal, yields, min_background_events=MIN_BACKGROUND_EVENTS, event=None,
                  variations=None):
    """Signal and background yields and background sumw2 per bin, bins merged by :func:`merge_from_top`.

    ``bin_index``: each event's bin in 0..len(edges)-2, or -1 for events outside the histogram.
    ``event`` (yields.event_index): the copies of one generated event in a bin are summed before
    squaring, in the bins and in the merged bins. ``variations``: {name: per-event factor of the
    yield} (e.g. the b-tag weight at +1 sigma); their merged signal and background yields are
    returned under ``variations`` for the systematic uncertainties (:func:`systematics_of`).
    Returns {edges, signal, background, background_sumw2, min_effective_events (= min_background_events),
    background_effective_events, low_statistics} (low_statistics: some bin still has background
    N_eff < min_background_events or no background, i.e. all bins together do not have enough).
    """
    n_bins = len(edges) - 1
    inside = np.asarray(bin_index) >= 0
    index, sig, y = np.asarray(bin_index)[inside], np.asarray(is_signal, dtype=bool)[inside], np.asarray(yields)[inside]
    signal = np.bincount(index[sig], weights=y[sig], minlength=n_bins)
    background = np.bincount(index[~sig], weights=y[~sig], minlength=n_bins)
    b_index, b_yield = index[~sig], y[~sig]
    # the background entries' events numbered 0..n_events-1
    b_event = None if event is None else np.unique(np.asarray(event)[inside][~sig], return_inverse=True)[1].ravel()

    def sumw2_of(bin_of_entry, n):
        return per_bin_sumw2(bin_of_entry, b_yield, n, b_event)

    def range_sumw2(lo, hi):
        return float(sumw2_of(((b_index >= lo) & (b_index < hi)).astype(np.int64), 2)[1])

    starts = merge_from_top(background, sumw2_of(b_index, n_bins), min_background_events,
                            None if b_event is None else range_sumw2)
    merged = np.searchsorted(starts, np.arange(n_bins), side="right") - 1  # original bin -> merged bin

    def merge(values):
        return np.bincount(merged, weights=values, minlength=len(starts))

    result = {
        "edges": [float(edges[k]) for k in starts] + [float(edges[-1])],
        "signal": merge(signal),
        "background": merge(background),
        "background_sumw2": sumw2_of(merged[b_index], len(starts)),
        "min_effective_events": min_background_events,
    }
    result["variations"] = {}
    for name, factor in (variations or {}).items():
        varied = y * np.asarray(factor, dtype=np.float64)[inside]
        result["variations"][name] = {
            "signal": np.bincount(merged[index[sig]], weights=varied[sig], minlength=len(starts)),
            "background": np.bincount(merged[index[~sig]], weights=varied[~sig], minlength=len(starts)),
        }
    return _flag_low_statistics(result, min_background_events)


def _flag_low_statistics(histograms, min_background_events):
    """Set ``background_effective_events``, ``min_effective_events`` and ``low_statistics`` (some bin with
    background N_eff < min_background_events or without background) of ``histograms``."""
    histograms["background_effective_events"] = effective_events(histograms["background"],
                                                                  histograms["background_sumw2"])
    histograms["min_effective_events"] = min_background_events
    histograms["low_statistics"] = not bool(
        np.all(enough_events(histograms["background_effective_events"], min_background_events))
        and np.all(histograms["background"] > 0)
    )
    return histograms


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


def score_histograms(prediction, luminosity_fb, n_bins=10, min_background_events=MIN_BACKGROUND_EVENTS,
                     validation=None):
    """Histograms of ``score_is_signal`` for a limit (see :func:`binned_yields` for the result).

    ``n_bins`` bins of equal expected signal yield, merged from the high-score end until every bin
    keeps background N_eff >= min_background_events and a positive background yield. A bin k holds
    edges[k] <= score < edges[k+1], the last one its upper edge (the highest score) too.

    ``validation`` (a Prediction of other events): the binning is chosen on it
    (:func:`choose_score_binning`) and applied to ``prediction`` (:func:`histograms_on_binning`).
    Without it the binning is chosen on ``prediction`` itself, whose background fluctuations then
    shape the bins it is evaluated in.
    """
    if validation is not None:
        edges = choose_score_binning(validation, luminosity_fb, n_bins, min_background_events)
        return histograms_on_binning(prediction, luminosity_fb, edges, min_background_events)
    yields = yield_weights(prediction, luminosity_fb)
    score, is_signal = prediction.score, prediction.is_signal
    inner = equal_signal_efficiency_edges(score[is_signal], yields[is_signal], n_bins)
    inner = inner[(inner > score.min()) & (inner <= score.max())]  # no empty outer bins
    edges = np.r_[score.min(), inner, score.max()]
    bin_index = np.searchsorted(inner, score, side="right")
    return binned_yields(bin_index, edges, is_signal, yields, min_background_events, event_index(prediction),
                         btag_variations(prediction))


def choose_score_binning(validation, luminosity_fb, n_bins=10, min_background_events=MIN_BACKGROUND_EVENTS):
    """The score bin edges of :func:`score_histograms` on the ``validation`` sample (equal signal
    efficiency, merged until every bin has background N_eff >= min_background_events): the choice to
    apply to the test sample with :func:`histograms_on_binning`."""
    return score_histograms(validation, luminosity_fb, n_bins, min_background_events)["edges"]


def histograms_on_binning(prediction, luminosity_fb, edges, min_background_events=MIN_BACKGROUND_EVENTS):
    """Histograms of ``score_is_signal`` in the bins ``edges`` chosen on another sample (the result of
    :func:`binned_yields`).

    The outer bins are open: every event counts, also scores beyond the validation sample's range.
    Bins are not merged by N_eff on this sample (that would be a choice made on it); only a bin
    without positive background joins its lower neighbour (the top one) or upper neighbour (the
    lowest), since the limit needs b > 0 in every bin. ``low_statistics`` flags a bin whose
    background has fewer than ``min_background_events`` effective MC events here.
    """
    yields = yield_weights(prediction, luminosity_fb)
    inner = np.asarray(edges, dtype=np.float64)[1:-1]
    bin_index = np.searchsorted(inner, prediction.score, side="right")
    histograms = binned_yields(bin_index, np.asarray(edges, dtype=np.float64), prediction.is_signal, yields, 0,
                               event_index(prediction), btag_variations(prediction))
    return _flag_low_statistics(histograms, min_background_events)


def btag_variations(prediction):
    """{btag_up, btag_down: per-event weight factors} when the file carries them (written by the generator's b-tag weight variations)."""
    arrays = prediction.arrays
    if "btag_weight_up" not in arrays or "btag_weight_down" not in arrays:
        return {}
    return {"btag_up": arrays["btag_weight_up"], "btag_down": arrays["btag_weight_down"]}


def systematics_of(histograms, background_normalisation=BACKGROUND_NORMALISATION):
    """The systematic uncertainties of a limit on ``histograms``: the background normalisation (one
    factor on every bin) and, when the histograms carry its variations, the b-tagging efficiency
    (correlated between signal and background: one nuisance parameter moves both)."""
    n = len(histograms["background"])
    systematics = [Systematic("background_norm", np.ones(n), np.full(n, 1.0 + background_normalisation))]
    variations = histograms.get("variations") or {}
    if "btag_up" in variations and "btag_down" in variations:
        up, down = variations["btag_up"], variations["btag_down"]
        systematics.append(Systematic.from_variations("btag_eff", histograms["signal"], histograms["background"],
                                                      up["signal"], down["signal"], up["background"], down["background"]))
    return systematics


def signal_cross_section(prediction):
    """The ``xsec_fb`` of the signal events (fb); raises when they disagree (mixed mass points)."""
    xsec = np.unique(prediction.arrays["xsec_fb"][prediction.is_signal].astype(np.float64))
    if not np.allclose(xsec, xsec[0], rtol=1e-6):
        raise PredictionError(f"{prediction.path}: the signal events have several xsec_fb: {xsec.tolist()}")
    return float(xsec[0])


def limit_from_histograms(histograms, signal_xsec_fb, cl=DEFAULT_CL, mc_stat=True, systematics=()):
    """:func:`expected_limit` of ``histograms`` plus the limit on sigma x BR (fb) = mu_up x signal_xsec_fb.

    ``mc_stat=False`` leaves the background MC statistical uncertainty out: the limit at the sampled
    background yields, as if they were exact (not what a larger MC sample would give: its yields
    would differ). None-valued limits with a ``note`` when the histogram has no signal, a bin without
    background, or the limit cannot be computed reliably.
    """
    signal, background = histograms["signal"], histograms["background"]
    result = {"histograms": histograms, "signal_xsec_fb": float(signal_xsec_fb), "mc_stat": mc_stat}
    none = {"mu_up": None, "band": None, "xsec_up_fb": None, "xsec_band_fb": None}
    if not signal.sum() > 0 or np.any(background <= 0):
        return {**result, **none, "note": "no limit: no signal selected or a bin without background"}
    sumw2 = histograms["background_sumw2"] if mc_stat else None
    try:
        limit = expected_limit(signal, background, sumw2, cl, systematics)
    except (ProfileError, ValueError) as err:
        return {**result, **none, "note": f"no limit: {' '.join(str(err).split())[:160]}"}
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


def classifier_limit(prediction, luminosity_fb, n_bins=10, cl=DEFAULT_CL, min_background_events=MIN_BACKGROUND_EVENTS,
                     mc_stat=True, validation=None):
    """Expected limit on mu and on sigma x BR from the binned classifier score (:func:`score_histograms`;
    ``validation``: the binning chosen on that sample, the limit computed on ``prediction``)."""
    histograms = score_histograms(prediction, luminosity_fb, n_bins, min_background_events, validation)
    return limit_from_histograms(histograms, signal_cross_section(prediction), cl, mc_stat)
