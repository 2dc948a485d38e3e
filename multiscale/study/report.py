"""Markdown tables of the mass scan (results.md): one table per mass point, then the comparisons."""

MODEL_ORDER = ("jets", "kin", "concat", "cross", "cross_param", "cut-based", "cut-based pooled")


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
        "limit without MC stat. [fb] | limit with MC stat. + syst. [fb] | best S/√B | bkg N_eff at the best cut | "
        "bkg N_eff in the limit's most signal-like bin |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    by_model = summary["summary"]
    for model in sorted(by_model, key=lambda m: MODEL_ORDER.index(m) if m in MODEL_ORDER else len(MODEL_ORDER)):
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
        "computed for the other trainings. S/√B: best score cut keeping ≥ "
        f"{summary['min_background_events']:g} effective background MC events, σ×BR = 10 fb; † marks a "
        "number resting on fewer effective background MC events than that (the networks' score bins and the "
        "cuts are held to the same floor on the test fold). `cut-based pooled`: the test folds' yields of "
        "the per-fold cut selections averaged over the folds (the MC statistics of all folds).",
        "",
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
    parts += [
        "## Paired comparisons (same test folds)",
        "",
        "Limit ratio A/B (< 1: A is more sensitive) = exp(mean log ratio) over the folds where both have "
        "a limit, with its corrected resampled t-test (Nadeau-Bengio: the folds share training events); "
        "p: that test's two-sided p-value / the same Holm-adjusted over every test of this table; "
        "significant: Holm-adjusted p < 0.05. Detectable: the smallest limit ratio (without MC stat.) "
        "today's pairs detect with 80% power, and the pairs a 10% / 20% difference needs (\"more "
        "events\": no number of folds of this sample suffices). Last column: the AUC difference A − B, or, "
        "against the cuts, the ratio of A's background to the cuts' at the cuts' signal efficiency.",
        "",
        "| A vs B @ m_H | limit ratio A/B | p / Holm | significant | ratio without MC stat. | p / Holm | significant "
        "| ratio with syst. | p / Holm | significant | detectable (without MC stat.) | AUC A − B, or B ratio at the cuts' εS |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    parts += [_comparison(name, entry) for name, entry in summary["comparisons"].items()]
    return "\n".join(parts) + "\n"
