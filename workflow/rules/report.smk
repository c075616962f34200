# Pages of the Snakemake report beside the tables and plots (`snakemake --report report.html`; the
# workflow's description page is workflow/report/workflow.rst, the captions are workflow/report/*.rst).
# The resolved config: every cell's settings as the grid resolved them, and the whole validated config.
REPORT_CONFIG = f"results/report/{NAME}_config.html"


rule report_config:
    input:
        config=GRID_CONFIG,
        code=code_input(["benchmark.report"]),
    output:
        report(REPORT_CONFIG, caption="../report/config.rst", category="Configuration"),
    log:
        f"logs/report/{NAME}_config.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "python -m benchmark report-config --config-file {input.config} --out {output} > {log} 2>&1"
