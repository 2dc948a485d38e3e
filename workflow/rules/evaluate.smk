# The evaluation (metrics, limits, comparisons, plots: multiscale.study.mass_scan) and the HTML report.

import shlex

PLOTS = ["limit_vs_mass", "limit_vs_mass_no_mc_stat", "limit_vs_mass_syst", "limit_vs_mass_smooth", "significance_vs_mass"]
if study.ref_mass is not None:
    PLOTS.append(f"roc_mH{study.ref_mass:g}")


rule evaluate:
    input:
        predictions=study.predictions(),
        # the cut-based selection reads the events themselves
        events=study.evaluation_events(),
    output:
        json=f"{OUT}/results.json",
        markdown=f"{OUT}/results.md",
        plots=[f"{OUT}/img/{plot}.png" for plot in PLOTS],
    params:
        masses=" ".join(f"{mass:g}" for mass in study.masses),
        models=" ".join(study.models_evaluated()),
        categories=" ".join(map(str, study.categories)),
        # the events by sample, file by file (Study owns the samples: none found by name)
        events=" ".join(map(shlex.quote, study.evaluation_arguments())),
    log:
        f"{OUT}/evaluate.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate.tsv"
    threads: every_core
    message:
        "evaluate {params.models} at m_H = {params.masses} (limits, cut-based reference, plots)"
    shell:
        "python -m multiscale.study.mass_scan --out {OUT} --predictions {input.predictions} {params.events} --folds {study.folds} --masses {params.masses} "
        "--features {FEATURES} --models {params.models} --ref-mass {config[ref_mass]} --min-events {config[min_events]} "
        "--min-tags {study.min_tags} --categories {params.categories} --jobs {threads} > {log} 2>&1"


rule report:
    input:
        rules.evaluate.output,
    output:
        f"{OUT}/report.html",
    message:
        "write the report {output}"
    run:
        from multiscale.study.html_report import write_report

        write_report(OUT, output[0], config)
