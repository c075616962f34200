# Prepared datasets come from DVC: `dvc repro prepare@<dataset>` pins every hash in dvc.lock and
# does nothing when the stage's code and params are unchanged.


rule prepare_dataset:
    input:
        "dvc.yaml",
        "config/datasets.yaml",
        "benchmark/data/{dataset}.py",
        "benchmark/data/prepared.py",
    output:
        directory("data/prepared/{dataset}"),
    log:
        "logs/prepare/{dataset}.log",
    conda:
        "../../environment.yml"
    params:
        python=PYTHON,
        bin=PYTHON_BIN,
    shell:
        # --wait-for-lock: several datasets may be prepared at once and DVC locks the repository.
        "PATH={params.bin:q}:$PATH {params.python} -m dvc --wait-for-lock repro --single-item prepare@{wildcards.dataset} > {log} 2>&1"
