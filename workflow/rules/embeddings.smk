# Semantic class embeddings: computed once per (dataset, hierarchy) from the hierarchy file and the
# prepared dataset's classes, cached under results/embeddings/; every cell of a semantic method with
# that hierarchy reads the cached file. The hierarchy files data/hierarchies/<name>.txt come from the
# data stages (data.smk / dvc.yaml).


rule class_embeddings:
    input:
        hierarchy="data/hierarchies/{hierarchy}.txt",
        data="data/prepared/{dataset}.json",
        code=code_input(["benchmark.hierarchy"]),
    output:
        embeddings="results/embeddings/{dataset}/{hierarchy}.npy",
        sidecar="results/embeddings/{dataset}/{hierarchy}.json",
    log:
        "logs/embeddings/{dataset}/{hierarchy}.log",
    localrule: True
    conda:
        "../../environment.yml"
    wildcard_constraints:
        hierarchy=r"[A-Za-z0-9_]+",
    params:
        class_ids=lambda w: config["dataset_settings"][w.dataset]["class_ids"],
    shell:
        "python -m benchmark embed --hierarchy {input.hierarchy} --data data/prepared/{wildcards.dataset}"
        " --class-ids {params.class_ids} --out {output.embeddings} > {log} 2>&1"
