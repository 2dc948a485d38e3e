# Events: one generator job per sample and chunk (the chunk index fixes the seeds, so a file is the same whatever
# runs it, wherever), truth tagging inside the analysis region (>= min_tags b-tagged subjets) of every sample:
# the test copies per file, the training copies of all backgrounds in one job (unweighted together: their
# physical proportions) and of each signal mass in one, and the data directory of every (mass, fold).

import shlex

from multiscale.study.workflow import TRUTH_DIRS, link_split

TRAIN, TEST = TRUTH_DIRS["train"], TRUTH_DIRS["test"]


rule generate:
    output:
        root=f"{DATA}/generated/{{stem}}_{{chunk}}.root",
        sidecar=f"{DATA}/generated/{{stem}}_{{chunk}}.json",
    params:
        run=lambda wc: shlex.join(SAMPLES[wc.stem].generator_arguments(config["preselection"])),  # quoted: a --pythia-setting has spaces
        # a directory of the job's own: the generator's resume logic sees no other chunk
        workdir=lambda wc: f"{DATA}/generated/.job_{wc.stem}_{wc.chunk}",
    log:
        f"{DATA}/logs/generate/{{stem}}_{{chunk}}.log",
    benchmark:
        f"{DATA}/benchmarks/generate/{{stem}}_{{chunk}}.tsv"
    message:
        "generate {wildcards.stem}, chunk {wildcards.chunk}"
    shell:
        "rm -rf {params.workdir} && python {REPO}/tools/generate_events.py {params.run} --chunks {wildcards.chunk} "
        "--outdir {params.workdir} > {log} 2>&1 && mv {params.workdir}/{wildcards.stem}_{wildcards.chunk}.root {output.root} "
        "&& mv {params.workdir}/{wildcards.stem}_{wildcards.chunk}.json {output.sidecar} && rm -rf {params.workdir}"


rule truth_tag_test:
    input:
        rules.generate.output.root,
    output:
        f"{DATA}/{TEST}/{{stem}}_{{chunk}}.root",
    log:
        f"{DATA}/logs/{TEST}/{{stem}}_{{chunk}}.log",
    message:
        "truth-tag {wildcards.stem}, chunk {wildcards.chunk} (test copies)"
    shell:
        "python {REPO}/tools/truth_tag.py --mode test --min-tags {study.min_tags} --outdir {DATA}/{TEST} {input} > {log} 2>&1"


rule truth_tag_train_signal:
    input:
        lambda wc: study.generated(SAMPLES[wc.signal]),
    output:
        [f"{DATA}/{TRAIN}/{{signal}}_{chunk}.root" for chunk in range(study.chunks)],
    log:
        f"{DATA}/logs/{TRAIN}/{{signal}}.log",
    message:
        "truth-tag the training copies of {wildcards.signal} (unweighted together)"
    shell:
        "python {REPO}/tools/truth_tag.py --mode train --min-tags {study.min_tags} --mixture {config[training_mixture]} "
        "--outdir {DATA}/{TRAIN} {input} > {log} 2>&1"


rule truth_tag_train_backgrounds:
    input:
        [path for sample in study.backgrounds for path in study.generated(sample)],
    output:
        study.truth_tagged("train"),
    log:
        f"{DATA}/logs/{TRAIN}/backgrounds.log",
    message:
        "truth-tag the training copies of the backgrounds (unweighted together: their physical proportions)"
    shell:
        "python {REPO}/tools/truth_tag.py --mode train --min-tags {study.min_tags} --mixture {config[training_mixture]} "
        "--outdir {DATA}/{TRAIN} {input} > {log} 2>&1"


def split_masses(name):
    """'mH600' -> [600.0]; 'all' (the parameterised model's training) -> every mass of the study."""
    return study.masses if name == "all" else [float(name[2:])]


rule split:
    input:
        lambda wc: study.split_inputs(split_masses(wc.name)),
    output:
        directory(f"{DATA}/splits/{{name}}_fold{{fold}}"),
    message:
        "link the data of {wildcards.name}, fold {wildcards.fold}"
    run:
        link_split(output[0], int(wildcards.fold), study.folds, input)
