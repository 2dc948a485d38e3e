# Trainings: every model at every mass and fold, the parameterised model once per fold on every mass, and its
# predictions at each mass. Each runs ./train_multiscale.sh with the study's recipe (config: epochs, batch, ...).

from multiscale.driver_options import study_recipe
from multiscale.study.workflow import write_param_config

# on a GPU slot of this machine (multiscale/study/gpu_slots.py), or as it is without GPUs
ON_GPU = (f"python -m multiscale.study.gpu_slots --gpus {config['gpus']} --per-gpu {config['trainings_per_gpu']} "
          f"--lock-dir {OUT}/.gpu_slots --" if GPU else "")
RUN = f"{{model}}_{FEATURES}_fold{{fold}}"  # the driver's run name (MODEL_FEATURES_COMMENT)


rule param_config:
    output:
        f"{OUT}/configs/jets_kin_param_{{which}}.yaml",
    message:
        "write the parameterised model's data config ({wildcards.which})"
    run:
        write_param_config(study.masses if wildcards.which == "train" else [float(wildcards.which[2:])], output[0])


rule gpu_check:
    output:
        f"{OUT}/gpu_check.txt",
    resources:
        gpu=1,
        request_gpus=1,
    params:
        models=" ".join(study.models_evaluated()),
    priority: 1000  # before the generation: a broken GPU setup stops the study in seconds
    message:
        "check a training step of each model on the GPU"
    shell:
        f"{ON_GPU} python -m multiscale.study.gpu_check {{params.models}} > {{output}}"


def split_name(where):
    """The data directory of a training: 'mH<m>', or 'all' (every mass) for the parameterised model."""
    return "all" if where == "param" else where


def split_files(where, fold, split):
    """The files a training or prediction is handed, one by one (Study owns the samples: none found by name)."""
    return study.split_files(split_name(where), int(fold))[split]


def training_data(wildcards):
    inputs = {"split": study.split_directory(split_name(wildcards.where), wildcards.fold)}
    if wildcards.where == "param":  # every mass, the background's hypotheses drawn from them
        inputs["config"] = expand(rules.param_config.output[0], which="train")
    if GPU:
        inputs["gpu_check"] = rules.gpu_check.output[0]
    return inputs


rule train:
    input:
        unpack(training_data),
    output:
        prediction=f"{OUT}/{{where}}/{RUN}/pred.root",
        model=f"{OUT}/{{where}}/{RUN}/net_best_epoch_state.pt",
    params:
        recipe=" ".join(study_recipe(config)),
        data_config=lambda wc, input: f"--data-config {input.config}" if wc.where == "param" else "",
        train=lambda wc: split_files(wc.where, wc.fold, "train"),
        test=lambda wc: split_files(wc.where, wc.fold, "test"),
    log:
        f"{OUT}/{{where}}/{RUN}.stdout",
    benchmark:
        f"{OUT}/benchmarks/train/{{where}}_{RUN}.tsv"
    threads: TRAIN_THREADS
    resources:
        gpu=GPU,
        request_gpus=GPU,  # HTCondor's name
    # the lower folds first: an interrupted study has as many trainings at every mass
    priority: lambda wc: 100 - int(wc.fold)
    message:
        "train {wildcards.model} at {wildcards.where}, fold {wildcards.fold}"
    # the driver makes each epoch one pass over the events in memory
    shell:
        "OMP_NUM_THREADS={threads} MS_OUTDIR={OUT}/{wildcards.where} COMMENT=fold{wildcards.fold} "
        f"{ON_GPU} {REPO}/train_multiscale.sh {{wildcards.model}} {FEATURES} --data-train {{params.train:q}} "
        "--data-test {params.test:q} -o seed $(({wildcards.fold} + 1)) {params.recipe} {params.data_config} > {log} 2>&1"


def predict(where, model, files, output, log, redirect=">", options=""):
    """The command predicting the events of the param ``files`` with the training of ``where``/``model`` at fold
    {wildcards.fold} into ``output`` (weaver's log: ``log``), its own output into {log.stdout} (``redirect``: > or >>);
    ``options``: more of the driver's. Every argument may be a Snakemake placeholder's name or text."""
    words = [f"OMP_NUM_THREADS={{threads}} MS_OUTDIR={OUT}/{where} COMMENT=fold{{wildcards.fold}} {ON_GPU}",
             f"{REPO}/train_multiscale.sh predict {model} {FEATURES} --data-test {{params.{files}:q}}", options,
             f"--predict-output {{{output}}} --log {{{log}}} {redirect} {{log.stdout}} 2>&1"]
    return " ".join(word for word in words if word)


# the validation fold of every training (Study: (fold + 1) % folds, not trained on), predicted as its test fold is:
# the evaluation chooses each network's score cut and limit binning there, never on the test fold
rule predict_validation:
    input:
        model=rules.train.output.model,
        split=lambda wc: study.split_directory(wc.where, wc.fold),
    output:
        f"{OUT}/{{where}}/{RUN}/pred_validation.root",
    params:
        validation=lambda wc: split_files(wc.where, wc.fold, "validation"),
    log:
        weaver=f"{OUT}/{{where}}/{RUN}/predict_validation.log",
        stdout=f"{OUT}/{{where}}/{RUN}_validation.stdout",
    benchmark:
        f"{OUT}/benchmarks/predict/{{where}}_{RUN}_validation.tsv"
    threads: TRAIN_THREADS
    resources:
        gpu=GPU,
        request_gpus=GPU,
    priority: lambda wc: 100 - int(wc.fold)
    message:
        "predict the validation fold of {wildcards.model} at {wildcards.where}, fold {wildcards.fold}"
    shell:
        predict("{wildcards.where}", "{wildcards.model}", "validation", "output", "log.weaver")


rule predict_param:
    input:
        model=expand(rules.train.output.model, where="param", model="cross_param", allow_missing=True),
        split=expand(rules.split.output[0], name="mH{mass}", allow_missing=True),
        config=expand(rules.param_config.output[0], which="mH{mass}"),
    output:
        test=f"{OUT}/param/cross_param_{FEATURES}_fold{{fold}}/pred_mH{{mass}}.root",
        validation=f"{OUT}/param/cross_param_{FEATURES}_fold{{fold}}/pred_mH{{mass}}_validation.root",
    params:
        test=lambda wc: split_files(f"mH{wc.mass}", wc.fold, "test"),
        validation=lambda wc: split_files(f"mH{wc.mass}", wc.fold, "validation"),
    log:
        weaver=f"{OUT}/param/cross_param_{FEATURES}_fold{{fold}}/predict_mH{{mass}}.log",
        validation=f"{OUT}/param/cross_param_{FEATURES}_fold{{fold}}/predict_mH{{mass}}_validation.log",
        stdout=f"{OUT}/param/cross_param_{FEATURES}_fold{{fold}}/predict_mH{{mass}}.stdout",
    benchmark:
        f"{OUT}/benchmarks/predict/cross_param_fold{{fold}}_mH{{mass}}.tsv"
    threads: TRAIN_THREADS
    resources:
        gpu=GPU,
        request_gpus=GPU,
    message:
        "predict with cross_param at m_H = {wildcards.mass}, fold {wildcards.fold} (test and validation folds)"
    shell:
        # the test fold, then the validation fold, at this mass hypothesis
        " && ".join(predict("param", "cross_param", split, f"output.{split}", log, redirect, "--data-config {input.config}")
                    for split, log, redirect in (("test", "log.weaver", ">"), ("validation", "log.validation", ">>")))
