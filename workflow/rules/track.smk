# The MLflow mirror of the grid (benchmark/tracking.py): every cell gets exactly one complete run in the
# grid's experiment (cells trained by another grid, or whose live logging failed, are logged from their
# records, nothing is retrained) and the grid's parent run gets the tables and plots. A store that fails
# fails only this job; the next run logs what is missing. Changing MLFLOW_TRACKING_URI logs the grid
# into the new store.


rule track:
    input:
        markers=GRID.markers,
        config=GRID_CONFIG,
        artifacts=aggregate_outputs(),
    output:
        LEDGER,
    log:
        f"logs/track/{NAME}.log",
    localrule: True
    params:
        uri=tracking_uri(),
        store=STORE,
    conda:
        "../../environment.yml"
    shell:
        "python -m benchmark track --config-file {input.config} --store {params.store} --out {output}"
        " --artifacts {input.artifacts} > {log} 2>&1"
