# Prepared datasets and class hierarchies come from DVC: `dvc repro --pull <stage>` runs the stage that
# writes the output (with its upstream stages: download@<dataset> before prepare_raw@<dataset>), pins
# every hash in dvc.lock, and does nothing when code and params are unchanged; `--pull` restores an
# unchanged output from the DVC cache or a remote instead of rebuilding it. The stage, its code and
# its definition are read from dvc.yaml (benchmark/data/stages.py).
#
# The rule's output is a receipt, data/prepared/<dataset>.json (the data hash), not the prepared folder:
# Snakemake deletes the outputs of a failed job, and the folder stays DVC's (a failed preparation leaves
# the previous good one in place). Its params are the settings that can change the data (not download
# workers or a mirror URL with the same checksum), so changing those re-prepares and retrains nothing.
# --wait-for-lock: several jobs may run DVC at once and DVC locks the repository.
from benchmark.data.stages import content_params_json, stage_writing


rule prepare_data:
    input:
        lambda w: stage_writing(f"data/prepared/{w.dataset}").code,
    output:
        "data/prepared/{dataset}.json",
    log:
        "logs/prepare/{dataset}.log",
    localrule: True
    conda:
        "../../environment.yml"
    wildcard_constraints:
        dataset=r"[a-z0-9_]+",
    params:
        stage=lambda w: stage_writing(f"data/prepared/{w.dataset}").name,
        definition=lambda w: stage_writing(f"data/prepared/{w.dataset}").definition,
        settings=lambda w: content_params_json(w.dataset),
    shell:
        "python -m dvc --wait-for-lock repro --pull {params.stage} > {log} 2>&1"
        " && python -m benchmark data-receipt {wildcards.dataset} --data data/prepared/{wildcards.dataset}"
        " --out {output} >> {log} 2>&1"


rule hierarchy:
    input:
        lambda w: stage_writing(f"data/hierarchies/{w.hierarchy}.txt").code,
        # a hierarchy made from a prepared dataset (CIFAR-100's superclasses) waits for it
        lambda w: receipt_inputs(stage_writing(f"data/hierarchies/{w.hierarchy}.txt").prepared),
    output:
        "data/hierarchies/{hierarchy}.txt",
    log:
        "logs/hierarchies/{hierarchy}.log",
    localrule: True
    conda:
        "../../environment.yml"
    wildcard_constraints:
        hierarchy=r"[A-Za-z0-9_]+",
    params:
        stage=lambda w: stage_writing(f"data/hierarchies/{w.hierarchy}.txt").name,
        definition=lambda w: stage_writing(f"data/hierarchies/{w.hierarchy}.txt").definition,
        settings=lambda w: content_params_json("hierarchies", w.hierarchy),
    shell:
        "python -m dvc --wait-for-lock repro --pull {params.stage} > {log} 2>&1"
