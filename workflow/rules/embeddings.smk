# Semantic class embeddings: computed once per (dataset, hierarchy) from the hierarchy file and the
# prepared dataset's classes, cached under results/embeddings/; every cell of a semantic loss with
# that hierarchy reads the cached file. The hierarchy files data/hierarchies/<name>.txt come from
# the data stages (data.smk / dvc.yaml).


rule class_embeddings:
    input:
        hierarchy=hierarchy_path("{hierarchy}"),
        data="data/prepared/{dataset}",
        code="benchmark/hierarchy.py",
    output:
        embeddings="results/embeddings/{dataset}/{hierarchy}.npy",
        sidecar="results/embeddings/{dataset}/{hierarchy}.json",
    log:
        "logs/embeddings/{dataset}/{hierarchy}.log",
    conda:
        "../../environment.yml"
    wildcard_constraints:
        hierarchy=r"[A-Za-z0-9_]+",
    params:
        python=PYTHON,
        class_ids=embedding_class_ids,
    shell:
        "{params.python} -m benchmark embed --hierarchy {input.hierarchy} --data {input.data}"
        " --class-ids {params.class_ids} --out {output.embeddings} > {log} 2>&1"
