# Events: one generator job per sample and chunk (the chunk index fixes the seeds, so a file is the same whatever
# runs it, wherever), truth tagging of the backgrounds per file, and the data directory of every (mass, fold).

import re

from multiscale.study.workflow import TRUTH_DIRS, link_split

SAMPLES = study.sample_of_stem()  # file stem without its chunk -> sample
BACKGROUND_STEMS = [stem for stem, sample in SAMPLES.items() if sample in study.backgrounds]
MODE_OF = {directory: mode for mode, directory in TRUTH_DIRS.items()}


def alternatives(names):
    return "|".join(map(re.escape, names))


rule generate:
    output:
        root=f"{DATA}/generated/{{stem}}_{{chunk}}.root",
        sidecar=f"{DATA}/generated/{{stem}}_{{chunk}}.json",
    wildcard_constraints:
        stem=alternatives(SAMPLES),
        chunk=r"\d+",
    params:
        run=lambda wc: " ".join(SAMPLES[wc.stem].generator_arguments(config["preselection"])),
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


rule truth_tag:
    input:
        f"{DATA}/generated/{{stem}}_{{chunk}}.root",
    output:
        f"{DATA}/{{copies}}/{{stem}}_{{chunk}}.root",
    wildcard_constraints:
        copies=alternatives(TRUTH_DIRS.values()),
        stem=alternatives(BACKGROUND_STEMS),
        chunk=r"\d+",
    params:
        mode=lambda wc: MODE_OF[wc.copies],
    log:
        f"{DATA}/logs/{{copies}}/{{stem}}_{{chunk}}.log",
    message:
        "truth-tag {wildcards.stem}, chunk {wildcards.chunk} ({params.mode})"
    shell:
        "python {REPO}/tools/truth_tag.py --mode {params.mode} --outdir {DATA}/{wildcards.copies} {input} > {log} 2>&1"


def split_masses(name):
    """'mH600' -> [600.0]; 'all' (the parameterised model's training) -> every mass of the study."""
    return study.masses if name == "all" else [float(name[2:])]


rule split:
    input:
        lambda wc: study.split_inputs(split_masses(wc.name)),
    output:
        directory(f"{DATA}/splits/{{name}}_fold{{fold}}"),
    wildcard_constraints:
        name=r"mH[0-9.]+|all",
        fold=r"\d+",
    message:
        "link the data of {wildcards.name}, fold {wildcards.fold}"
    run:
        link_split(output[0], int(wildcards.fold), study.folds, input)
