# Pages of the Snakemake report beside the tables and plots (`snakemake --report report.html`; the
# workflow's description page is workflow/report/workflow.rst, the captions are workflow/report/*.rst).
# The resolved config: every cell's settings as the grid resolved them, and the whole validated config.
REPORT_CONFIG = f"results/report/{NAME}_config.html"


rule report_config:
    input:
        code=code_files(["benchmark.report"]),
    output:
        report(REPORT_CONFIG, caption="../report/config.rst", category="Configuration"),
    log:
        f"logs/report/{NAME}_config.log",
    localrule: True
    params:
        config_sha256=TABLE_CONFIG_SHA256,  # the config itself is the global TABLE_CONFIG (aggregate.smk)
    shell:
        "{PYTHON} -m benchmark report-config --config-json {TABLE_CONFIG:q} --out {output} > {log} 2>&1"
