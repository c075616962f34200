# Tables and plots of the whole grid, and the MLflow summary run.


rule aggregate:
    input:
        cells=all_cells(),
        tracking=ancient(TRACKING),
        reference=reference_files(),
    output:
        table=report(f"results/tables/{GRID}.md", caption="../report/table.rst", category="Tables"),
        latex=f"results/tables/{GRID}.tex",
        csv=f"results/tables/{GRID}.csv",
        plots=report(
            expand(f"results/plots/{GRID}_{{dataset}}.{{ext}}", dataset=config["datasets"], ext=["png", "pdf"]),
            caption="../report/plot.rst",
            category="Plots",
        ),
    log:
        f"logs/aggregate/{GRID}.log",
    conda:
        "../../environment.yml"
    params:
        python=PYTHON,
        config=json.dumps(config, sort_keys=True),
    shell:
        "{params.python} -m benchmark aggregate --config-json {params.config:q}"
        " --tracking {input.tracking} > {log} 2>&1"
