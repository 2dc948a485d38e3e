"""The mass scan's report as one self-contained HTML file (the workflow's report rule): the plots (limits,
significance, ROC), the results tables of results.md, the settings and the wall time of every step.

    python -m multiscale.study.html_report training/mass_scan [--output report.html]
"""

import argparse
import base64
import html
import json
import re
from pathlib import Path
from statistics import median

import markdown

# captions by the plot's file name (exact: "limit_vs_mass" is a prefix of the other two limit plots)
PLOT_TITLES = {
    "limit_vs_mass": "Expected limit against m_H, with the background MC statistical uncertainty",
    "limit_vs_mass_no_mc_stat": "Expected limit against m_H, without the background MC statistical uncertainty",
    "limit_vs_mass_syst": "Expected limit against m_H, with the MC statistical and the systematic uncertainties "
                          "(b-tagging, background normalisation)",
    "limit_vs_mass_smooth": "Expected limit against m_H, the background from a dijet-function fit of m_JJ after the "
                            "cut chosen on the validation fold",
    "limit_vs_mass_smooth_decorrelated": "Expected limit against m_H, the background from a dijet-function fit of "
                                         "m_JJ after the mass-decorrelated cut (same background efficiency in every "
                                         "m_JJ bin of the validation fold)",
    "significance_vs_mass": "S/√B against m_H, the score cut chosen on the validation fold",
}
# the rest of the name is a parameter
PLOT_PREFIXES = {"roc_mH": "ROC curves at m_H = {} GeV",
                 "sculpting_": "The background's m_JJ before and after the cut, first repeat ({})",
                 "decorrelated_sculpting_": "The background's m_JJ before and after the mass-decorrelated cut, "
                                            "first repeat ({})"}
STYLE = """body { font-family: sans-serif; max-width: 1200px; margin: auto; padding: 1em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 90%; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { display: inline-block; width: 48%; margin: 0.5%; vertical-align: top; }
figure img { width: 100%; } pre { background: #f4f4f4; padding: 0.5em; }"""


def caption(stem):
    """What the plot of file stem ``stem`` shows (its stem where the report does not know it)."""
    if stem in PLOT_TITLES:
        return PLOT_TITLES[stem]
    return next((text.format(stem[len(prefix):]) for prefix, text in PLOT_PREFIXES.items()
                 if stem.startswith(prefix)), stem)


def _figure(path):
    title = caption(path.stem)
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'
            f"<figcaption>{html.escape(title)} ({html.escape(path.name)})</figcaption></figure>")


def wall_times(benchmark_dirs):
    """Rows (step, jobs, median s, total s) from Snakemake's benchmark files (one per job: 's' is its wall time)."""
    by_step = {}
    for directory in benchmark_dirs:
        for path in sorted(Path(directory).glob("**/*.tsv")):
            lines = path.read_text().splitlines()
            if len(lines) < 2:
                continue
            step = path.parent.name if path.parent != Path(directory) else path.stem
            by_step.setdefault(step, []).append(float(lines[1].split("\t")[0]))
    return [(step, len(times), median(times), sum(times)) for step, times in sorted(by_step.items())]


def _table(header, rows):
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render(out, config=None):
    """The report's HTML text for the study in ``out`` (results.md, img/, benchmarks/)."""
    out = Path(out)
    # results.md's headings one level down: the report has its own title
    tables = re.sub(r"^#", "##", (out / "results.md").read_text(), flags=re.MULTILINE)
    results = markdown.markdown(tables, extensions=["tables"])
    plots = "".join(_figure(path) for path in sorted((out / "img").glob("*.png")))
    summary = json.loads((out / "results.json").read_text())
    benchmark_dirs = [out / "benchmarks"] + ([Path(config["data"]) / "benchmarks"] if config else [])
    times = [(step, n, f"{mid:.1f}", f"{total:.0f}") for step, n, mid, total in wall_times(benchmark_dirs)]
    settings = json.dumps(config, indent=1, sort_keys=True) if config else "(not recorded)"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Mass scan: {html.escape(str(out))}</title><style>{STYLE}</style></head>
<body>
<h1>Mass scan</h1>
<p>{html.escape(str(out))}: m_H = {", ".join(f"{m:g}" for m in summary["masses"])} GeV,
{summary["luminosity_fb"]:g} fb<sup>-1</sup>. How to read it: docs/results.md.</p>
<h2>Plots</h2>
{plots}
<h2>Results</h2>
{results}
<h2>Wall time per step</h2>
{_table(["step", "jobs", "median [s]", "total [s]"], times)}
<h2>Settings</h2>
<pre>{html.escape(settings)}</pre>
</body></html>
"""


def write_report(out, path, config=None):
    """Write the report of the study in ``out`` to ``path`` (under a temporary name, then renamed)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(out, config))
    tmp.replace(path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m multiscale.study.html_report", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the study's output directory (results.md, results.json, img/)")
    parser.add_argument("--output", help="the HTML file (default: OUT/report.html)")
    args = parser.parse_args(argv)
    write_report(args.out, args.output or Path(args.out) / "report.html")


if __name__ == "__main__":
    main()
