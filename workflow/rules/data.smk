# Prepared datasets and class hierarchies come from DVC: `dvc repro --pull <stage>` runs the stage
# that writes the output (with its upstream stages: download@<dataset> before prepare_raw@<dataset>),
# pins every hash in dvc.lock, and does nothing when code and params are unchanged. `--pull`
# restores an unchanged output from the DVC cache or a remote instead of rebuilding it (Snakemake
# removes a job's outputs before running it, and prepared folders are persistent DVC outs). The
# stage, its code and its definition are read from dvc.yaml (benchmark/data/stages.py): a dataset
# added there needs no change here, and editing one stage reruns only the jobs of that stage (its
# definition and settings are params). --wait-for-lock: several jobs may run DVC at once and DVC
# locks the repository.
from benchmark.data.stages import params_json, stage_writing


rule prepare_dataset:
    input:
        lambda w: stage_writing(f"data/prepared/{w.dataset}").code,
    output:
        directory("data/prepared/{dataset}"),
    log:
        "logs/prepare/{dataset}.log",
    conda:
        "../../environment.yml"
    params:
        python=PYTHON,
        bin=PYTHON_BIN,
        stage=lambda w: stage_writing(f"data/prepared/{w.dataset}").name,
        definition=lambda w: stage_writing(f"data/prepared/{w.dataset}").definition,
        settings=lambda w: params_json(w.dataset),
    shell:
        "PATH={params.bin:q}:$PATH {params.python} -m dvc --wait-for-lock repro --pull {params.stage}"
        " > {log} 2>&1"


rule hierarchy:
    input:
        lambda w: stage_writing(f"data/hierarchies/{w.hierarchy}.txt").code,
        # a hierarchy made from a prepared dataset (CIFAR-100's superclasses) waits for it
        lambda w: stage_writing(f"data/hierarchies/{w.hierarchy}.txt").prepared,
    output:
        "data/hierarchies/{hierarchy}.txt",
    log:
        "logs/hierarchies/{hierarchy}.log",
    conda:
        "../../environment.yml"
    wildcard_constraints:
        hierarchy=r"[A-Za-z0-9_]+",
    params:
        python=PYTHON,
        bin=PYTHON_BIN,
        stage=lambda w: stage_writing(f"data/hierarchies/{w.hierarchy}.txt").name,
        definition=lambda w: stage_writing(f"data/hierarchies/{w.hierarchy}.txt").definition,
        settings=lambda w: params_json("hierarchies", w.hierarchy),
    shell:
        "PATH={params.bin:q}:$PATH {params.python} -m dvc --wait-for-lock repro --pull {params.stage}"
        " > {log} 2>&1"
