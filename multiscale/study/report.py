"""Markdown tables of the mass scan (results.md): one table per mass point, then the comparisons."""

MODEL_ORDER = ("jets", "kin", "concat", "cross", "cross_param", "cut-based")


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
    cells = [
        f"{model} ({n})",
        _value(s.get("auc"), ".4f"),
        *(_value(s.get(f"rejection_{e}"), ".3g") for e in ("0.30", "0.50", "0.80")),
        _value(s.get("limit_fb"), ".3g", n),
        _value(s.get("limit_no_mc_stat_fb"), ".3g", n),
        _value(s.get("significance"), ".3g") + flag,
        _value(n_eff, ".0f") + flag,
    ]
    return "| " + " | ".join(cells) + " |"


def mass_table(summary, mass):
    lines = [
        f"### m_H = {mass} GeV",
        "",
        "| model (trainings) | AUC | 1/εB @ εS=30% | 1/εB @ εS=50% | 1/εB @ εS=80% | expected limit [fb] | limit without MC stat. [fb] | best S/√B | bkg MC events left (N_eff) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    by_model = summary["summary"]
    for model in sorted(by_model, key=lambda m: MODEL_ORDER.index(m) if m in MODEL_ORDER else len(MODEL_ORDER)):
        if mass in by_model[model]:
            lines.append(_row(model, by_model[model][mass], summary["min_background_events"]))
    return "\n".join(lines)


def _ratio(limit):
    """ratio (pairs), p, verdict of a log_ratio result."""
    if limit is None or limit["ratio"] is None:
        return ["–", "–", "–"]
    sem = f" ± {limit['sem']:.2f}" if limit["sem"] is not None else ""
    p = f"{limit['p_value']:.3f}" if limit["p_value"] is not None else "–"
    verdict = {True: "yes", False: "no", None: "–"}[limit["significant"]]
    return [f"{limit['ratio']:.3g} (log {limit['mean']:+.2f}{sem}; {limit['n_pairs']} pairs)", p, verdict]


def difference_text(auc):
    """mean ± sem (p = ...) of a paired_difference result, "–" without one."""
    if not auc or auc["mean"] is None:
        return "–"
    text = f"{auc['mean']:+.4f}" + (f" ± {auc['sem']:.4f}" if auc["sem"] is not None else "")
    if auc["p_value"] is not None:
        text += f" (p = {auc['p_value']:.3f})"
    return text


def _comparison(name, entry):
    cells = [name, *_ratio(entry.get("limit_ratio")), *_ratio(entry.get("limit_no_mc_stat_ratio")),
             difference_text(entry.get("auc_difference"))]
    return "| " + " | ".join(cells) + " |"


def markdown(summary):
    masses = sorted({m for by_mass in summary["summary"].values() for m in by_mass}, key=float)
    parts = [
        f"# Mass scan: expected sensitivity at {summary['luminosity_fb']:g} fb^-1",
        "",
        "Mean ± standard deviation over the trainings (folds). Limits: expected (median, background-only "
        "Asimov, asymptotic CLs) 95% CL upper limit on σ(gg → H) × BR(H → hh → bbbb), with the "
        "background MC statistical uncertainty as nuisance parameters, and without it (the limit at the "
        "sampled background yields taken as exact, not what a larger MC sample would give: its yields would "
        "differ); \"(k of n)\": no limit could be computed for the other trainings. S/√B: best score cut keeping ≥ "
        f"{summary['min_background_events']} effective background MC events, σ×BR = 10 fb; † marks a "
        "number resting on fewer effective background MC events than that.",
        "",
    ]
    for mass in masses:
        parts += [mass_table(summary, mass), ""]
    parts += [
        "## Paired comparisons (same test folds)",
        "",
        "Limit ratio A/B (< 1: A is more sensitive) = exp(mean log ratio) over the folds where both have "
        "a limit; p: two-sided paired t-test on the log ratios; significant: p < 0.05. AUC difference "
        "A − B with its standard error and paired t-test p.",
        "",
        "| A vs B @ m_H | limit ratio A/B | p | significant | ratio without MC stat. | p | significant | AUC A − B |",
        "|---|---|---|---|---|---|---|---|",
    ]
    parts += [_comparison(name, entry) for name, entry in summary["comparisons"].items()]
    return "\n".join(parts) + "\n"
