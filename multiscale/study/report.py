"""Markdown tables of the mass scan (results.md): one table per mass point, then the comparisons."""

import math

from ..definitions import MODELS

# the cut-based references, beside the models in the results (study.cut_folds)
CUT_BASED = "cut-based"
CUT_BASED_POOLED = "cut-based pooled"  # the test folds' yields averaged over the folds: one value per mass
# every table and plot legend of the study: the models in the order of multiscale/definitions.py, then the cuts
MODEL_ORDER = (*MODELS, CUT_BASED, CUT_BASED_POOLED)


def model_rank(name):
    """The place of a model in tables and legends; one not in MODEL_ORDER goes last."""
    return MODEL_ORDER.index(name) if name in MODEL_ORDER else len(MODEL_ORDER)


def _value(spread, fmt, n_total=None):
    """mean ± std; "(k of n)" when only k of the n trainings gave a value."""
    if spread is None or spread["mean"] is None:
        return "–"
    text = format(spread["mean"], fmt)
    if spread["std"] is not None:
        text += f" ± {format(spread['std'], fmt)}"
    if n_total is not None and spread["n"] < n_total:
        text += f" ({spread['n']} of {n_total})"
    return text


def _row(model, s, min_events):
    n = max((v["n"] for v in s.values()), default=0)
    n_eff = s.get("background_effective_events")
    flag = " †" if n_eff and n_eff["mean"] is not None and n_eff["mean"] < min_events else ""
    top = s.get("top_bin_effective_events")
    top_flag = " †" if top and top["mean"] is not None and top["mean"] < min_events else ""
    cells = [
        f"{model} ({n})",
        _value(s.get("auc"), ".4f"),
        *(_value(s.get(f"rejection_{e}"), ".3g") for e in ("0.30", "0.50", "0.80")),
        _value(s.get("limit_fb"), ".3g", n),
        _value(s.get("limit_no_mc_stat_fb"), ".3g", n),
        _value(s.get("limit_syst_fb"), ".3g", n),
        _value(s.get("limit_smooth_fb"), ".3g", n),
        _value(s.get("significance"), ".3g") + flag,
        _value(n_eff, ".0f") + flag,
        _value(top, ".0f") + top_flag,
    ]
    return "| " + " | ".join(cells) + " |"


def mass_table(summary, mass):
    lines = [
        f"### m_H = {mass} GeV",
        "",
        "| model (trainings) | AUC | 1/εB @ εS=30% | 1/εB @ εS=50% | 1/εB @ εS=80% | expected limit [fb] | "
        "limit without MC stat. [fb] | limit with MC stat. + syst. [fb] | smooth-fit limit [fb] | S/√B | "
        "bkg N_eff at the cut | bkg N_eff in the limit's most signal-like bin |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_model = summary["summary"]
    for model in sorted(by_model, key=model_rank):
        if mass in by_model[model]:
            lines.append(_row(model, by_model[model][mass], summary["min_background_events"]))
    return "\n".join(lines)


def _ratio(test):
    """ratio (log ± sem; pairs), p, Holm-adjusted p and verdict of a log_ratio result."""
    if test is None or test["ratio"] is None:
        return ["–", "–", "–"]
    sem = f" ± {test['sem']:.2f}" if test["sem"] is not None else ""
    p = f"{test['p_value']:.3f}" if test["p_value"] is not None else "–"
    if test.get("p_holm") is not None:
        p += f" / {test['p_holm']:.3f}"
    verdict = {True: "yes", False: "no", None: "–"}[test.get("significant_holm", test["significant"])]
    return [f"{test['ratio']:.3g} (log {test['mean']:+.2f}{sem}; {test['n_pairs']} pairs)", p, verdict]


def difference_text(auc):
    """mean ± sem (p = ...) of a paired_difference result, "–" without one."""
    if not auc or auc["mean"] is None:
        return "–"
    text = f"{auc['mean']:+.4f}" + (f" ± {auc['sem']:.4f}" if auc["sem"] is not None else "")
    if auc["p_value"] is not None:
        text += f" (p = {auc['p_value']:.3f}" + (f", Holm {auc['p_holm']:.3f}" if auc.get("p_holm") is not None else "") + ")"
    return text


def _power(test):
    """The smallest ratio today's pairs detect, and the pairs 10% / 20% would need."""
    if not test or test.get("detectable_ratio") is None:
        return "–"
    need = [test.get(f"pairs_for_{k}_percent") for k in (10, 20)]
    return (f"{test['detectable_ratio']:.2f}; pairs for 10%/20%: "
            + "/".join("more events" if n is None else str(n) for n in need))


def _comparison(name, entry):
    cells = [name, *_ratio(entry.get("limit_ratio")), *_ratio(entry.get("limit_no_mc_stat_ratio")),
             *_ratio(entry.get("limit_syst_ratio")), _power(entry.get("limit_no_mc_stat_ratio")),
             difference_text(entry.get("auc_difference")) if "auc_difference" in entry
             else _ratio(entry.get("background_ratio_at_cut_efficiency"))[0]]
    return "| " + " | ".join(cells) + " |"


def _log_std(spread):
    return "–" if not spread or spread.get("log_std") is None else f"{spread['log_std']:.2f}"


def smooth_table(summary, masses):
    """Per model and mass: the repeat-to-repeat spread (sd of ln) of the template and smooth-fit limits, and the
    sculpting check of the cut (mean p-value over the repeats); then, for the networks, the same after the
    mass-decorrelated cut and with the pass-fraction background."""
    lines = ["## Limits from a smooth background", "",
             "The background of the limit from a dijet-function fit of m_JJ after the cut (the networks: the score cut "
             "chosen on the validation fold; the cuts: their selection without its m_JJ window), one bin of m_JJ "
             "across 0.8-1.1 m_H, the fit's covariance as nuisance parameters. Spread: the standard deviation of "
             "ln(limit) over the repeats (trainings), template limit (with MC stat.) against smooth fit. Sculpting: "
             "the chi2 test that the cut keeps the same fraction of the background in every m_JJ bin, mean p over the "
             "repeats (small: the cut sculpts the mass); plots img/sculpting_*.png.", "",
             "| model @ m_H | smooth-fit limit [fb] | spread of ln(limit): template | smooth fit | sculpting p (mean) |",
             "|---|---|---|---|---|"]
    decorrelated = ["", "After the mass-decorrelated cut (the networks' score cut with a threshold that depends on m_JJ, "
                    "set on the validation fold so that every m_JJ bin keeps the plain cut's background efficiency: "
                    "evaluation/decorrelation.py; plots img/decorrelated_sculpting_*.png): the fit of the events after "
                    "it, and the pass fraction (the fit of the background before the cut times the fraction that "
                    "passes it).", "",
                    "| model @ m_H | spread: template | fit after the cut: limit [fb] | spread | sculpting p (mean) "
                    "| pass fraction: limit [fb] | spread |",
                    "|---|---|---|---|---|---|---|"]
    for model, by_mass in _ordered(summary["summary"]):
        for mass in masses:
            s = by_mass.get(mass)
            if not s or "limit_smooth_fb" not in s:
                continue
            lines.append(f"| {model} @ {mass} | {_value(s.get('limit_smooth_fb'), '.3g')} | {_log_std(s.get('limit_fb'))} "
                         f"| {_log_std(s.get('limit_smooth_fb'))} | {_value(s.get('sculpting_p_value'), '.2g')} |")
            if s.get("limit_smooth_decorrelated_fb"):
                decorrelated.append(
                    f"| {model} @ {mass} | {_log_std(s.get('limit_fb'))} "
                    f"| {_value(s.get('limit_smooth_decorrelated_fb'), '.3g')} | {_log_std(s.get('limit_smooth_decorrelated_fb'))} "
                    f"| {_value(s.get('sculpting_decorrelated_p_value'), '.2g')} "
                    f"| {_value(s.get('limit_pass_fraction_fb'), '.3g')} | {_log_std(s.get('limit_pass_fraction_fb'))} |")
    lines += decorrelated
    notes = sorted({(model, mass, entry["limit_smooth"]["note"]) for model, by_mass in summary.get("per_training", {}).items()
                    for mass, by_fold in by_mass.items() for entry in by_fold.values()
                    if (entry.get("limit_smooth") or {}).get("note")})
    lines += [""] + [f"- {model} @ {mass}: {note}" for model, mass, note in notes]
    return lines


def _ordered(by_model):
    return sorted(by_model.items(), key=lambda item: model_rank(item[0]))


def tagger_table(summary):
    """Rejection ratios at fixed signal efficiency, repeat r against repeat r, with the test-sample uncertainty and
    the power of the test."""
    comparisons = summary.get("tagger_comparisons") or {}
    if not comparisons:
        return []
    ratio = next(iter(comparisons.values()))["test_train_ratio"]
    lines = ["## Taggers compared at fixed signal efficiency", "",
             "Background rejection ratio A/B (> 1: A rejects more) at 30% and 50% signal efficiency, repeat r of A "
             "against repeat r of B on the same test fold: exp(mean log ratio) ± its corrected sem; the repeats are "
             "k-fold trainings that share training events, so the test is the corrected resampled t-test "
             f"(Nadeau-Bengio, n_test/n_train = {ratio:.2g}); p / Holm over this table. Test sample: the event "
             "bootstrap's sd of the log ratio (truth-tag copies of one event drawn together), mean over the repeats; "
             "repeats: the sd of the log ratios over the repeats. Detectable: the smallest ratio the repeats detect "
             "at 80% power (noncentral t); pairs for 1.2: the repeats a ratio of 1.2 needs (\"more events\": no "
             "number of repeats of this sample suffices); scale for 1.2: how many times today's events the same repeats "
             "would need to detect 1.2, if the spread of the log ratios falls as 1/√events.", "",
             "| A vs B @ m_H | εS | rejection ratio A/B | p / Holm | significant | sd log: test sample | repeats "
             "| detectable ratio | pairs for 1.2 | scale for 1.2 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, entry in comparisons.items():
        for eff in ("0.30", "0.50"):
            test = entry.get(eff)
            if not test:
                continue
            boot = "–" if test.get("bootstrap_sd_log") is None else f"{test['bootstrap_sd_log']:.3f}"
            sd = "–" if test.get("sd") is None else f"{test['sd']:.3f}"
            detectable = "–" if test.get("detectable_ratio") is None else f"{test['detectable_ratio']:.3g}"
            pairs = "more events" if test.get("pairs_for_20_percent") is None else str(test["pairs_for_20_percent"])
            scale = "–" if test.get("scale_for_20_percent") is None else f"{test['scale_for_20_percent']:.3g}"
            lines.append(f"| {name} | {float(eff):.0%} | {' | '.join(_ratio(test))} | {boot} | {sd} | {detectable} | {pairs} "
                         f"| {scale} |")
    return lines + [""]


def _interval(entry):
    low, high = entry.get("interval") or (None, None)
    return "–" if low is None or not all(map(math.isfinite, (low, high))) else f"[{low:.3g}, {high:.3g}]"


def pooled_table(summary):
    """Rejections and rejection ratios on the pooled out-of-fold test sample, with the event bootstrap's 68%
    interval."""
    pooled = summary.get("pooled_rejections") or {}
    if not pooled:
        return []
    lines = ["## Taggers on one large common test sample", "",
             "The out-of-fold predictions of every tested fold together: the same events for every tagger, each "
             "scored by the training that did not see it. Background rejection 1/εB at 30% and 50% signal "
             "efficiency, and the ratios A/B, each with the 68% interval of a bootstrap over the test events "
             "(truth-tag copies of one event drawn together, paired across the taggers). This interval is the "
             "test sample's uncertainty only; the spread of the trainings is in the table above.", "",
             "| m_H | folds | A / B | εS | rejection A | rejection B | ratio A/B | 68% interval |",
             "|---|---|---|---|---|---|---|---|"]
    for mass, entry in pooled.items():
        for pair, by_eff in entry["ratios"].items():
            a, b = pair.split(" / ")
            for eff, ratio in by_eff.items():
                rejections = [entry["per_model"][m][eff]["rejection"] for m in (a, b)]
                text = ["–" if r is None else f"{r:.3g}" for r in rejections]
                value = "–" if ratio.get("ratio") is None else f"{ratio['ratio']:.3g}"
                lines.append(f"| {mass} | {entry['folds_pooled']} | {pair} | {float(eff):.0%} | {text[0]} | {text[1]} "
                             f"| {value} | {_interval(ratio)} |")
        if entry.get("note"):
            lines.append(f"\n{mass} GeV: {entry['note']}")
    return lines + [""]


def _region_text(summary):
    """The analysis region and the tag categories the limits combine (results.json of a run that records them)."""
    categories = summary.get("tag_categories")
    if not categories or categories == ["all"]:
        return []
    return [f"Region: ≥ {summary['min_tags']} b-tagged subjets. The limits combine the tag categories "
            f"{', '.join(categories)} (b-tagged subjets): each its own score bins (networks) or count (cuts), "
            "every bin held to the N_eff floor.", ""]


def markdown(summary):
    masses = sorted({m for by_mass in summary["summary"].values() for m in by_mass}, key=float)
    parts = [
        f"# Mass scan: expected sensitivity at {summary['luminosity_fb']:g} fb^-1",
        "",
        "Mean ± standard deviation over the trainings (folds). Limits: expected (median, background-only "
        "Asimov, asymptotic CLs) 95% CL upper limit on σ(gg → H) × BR(H → hh → bbbb), with the "
        "background MC statistical uncertainty as nuisance parameters; without it (the limit at the "
        "sampled background yields taken as exact, not what a larger MC sample would give: its yields would "
        "differ); and with it plus the systematic uncertainties (b-tagging efficiency ±5%, correlated "
        "between signal and background; background normalisation ±10%). \"(k of n)\": no limit could be "
        "computed for the other trainings. S/√B: the score cut of the best S/√B on the validation fold (keeping ≥ "
        f"{summary['min_background_events']:g} effective background MC events there), evaluated on the test fold, "
        "σ×BR = 10 fb; the limits' score bins are chosen on the validation fold too; † marks a "
        "number resting on fewer effective background MC events than that (the networks' score bins and the "
        "cuts are held to the same floor on the test fold). `cut-based pooled`: the test folds' yields of "
        "the per-fold cut selections averaged over the folds (the MC statistics of all folds).",
        "",
        *_region_text(summary),
    ]
    for mass in masses:
        parts += [mass_table(summary, mass), ""]
    composition = summary.get("training_background") or {}
    if composition:
        parts += ["## What the networks saw", "",
                  "The background training copies (all folds) by sample, against each sample's share of the "
                  "expected background yield in the analysis region (the test copies).", "",
                  "| sample | training copies | share of the training background | share of the region's yield |",
                  "|---|---|---|---|"]
        parts += [f"| {name} | {c['training_copies']} | {c['training_share']:.3f} | {c['region_yield_share']:.3g} |"
                  for name, c in composition.items()]
        parts += [""]
    parts += [*smooth_table(summary, masses), "", *tagger_table(summary), *pooled_table(summary)]
    parts += [
        "## Paired comparisons (same test folds)",
        "",
        "Limit ratio A/B (< 1: A is more sensitive) = exp(mean log ratio) over the folds where both have "
        "a limit, with its corrected resampled t-test (Nadeau-Bengio: the folds share training events); "
        "p: that test's two-sided p-value / the same Holm-adjusted over every test of this table; "
        "significant: Holm-adjusted p < 0.05. Detectable: the smallest limit ratio (without MC stat.) "
        "today's pairs detect with 80% power (noncentral t), and the pairs a 10% / 20% difference needs (\"more "
        "events\": no number of folds of this sample suffices). Last column: the AUC difference A − B, or, "
        "against the cuts, the ratio of A's background to the cuts' at the cuts' signal efficiency.",
        "",
        "| A vs B @ m_H | limit ratio A/B | p / Holm | significant | ratio without MC stat. | p / Holm | significant "
        "| ratio with syst. | p / Holm | significant | detectable (without MC stat.) | AUC A − B, or B ratio at the cuts' εS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    parts += [_comparison(name, entry) for name, entry in summary["comparisons"].items()]
    return "\n".join(parts) + "\n"
