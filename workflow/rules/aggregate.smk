# Tables (with statistics) and plots of the whole grid, from its cells' records: every pack's marker
# is an input, so the tables are rebuilt whenever a cell is (re)trained. Its params are the config
# without the settings that cannot change a table (threads, packing, device).
from benchmark.aggregate import outputs as _aggregate_outputs

AGGREGATE = _aggregate_outputs(config)


rule aggregate:
    input:
        markers=GRID.markers,
        config=GRID_CONFIG,
        reference=reference_files(),
        code=code_input(["benchmark.aggregate", "benchmark.tables", "benchmark.plots", "benchmark.stats"]),
    output:
        tables=report([str(p) for p in AGGREGATE["tables"] if p.suffix == ".html"], caption="../report/table.rst",
                      category="Tables"),
        table_files=[str(p) for p in AGGREGATE["tables"] if p.suffix != ".html"],
        plots=report([str(p) for p in AGGREGATE["plots"] if p.suffix == ".png"], caption="../report/plot.rst",
                     category="Plots"),
        plot_files=[str(p) for p in AGGREGATE["plots"] if p.suffix != ".png"],
        curves=report([str(p) for p in AGGREGATE["curves"] if p.suffix == ".png"], caption="../report/curves.rst",
                      category="Training curves"),
        curve_files=[str(p) for p in AGGREGATE["curves"] if p.suffix != ".png"],
        cd=report([str(p) for p in AGGREGATE["cd"] if p.suffix == ".png"], caption="../report/cd.rst",
                  category="Tables"),
        cd_files=[str(p) for p in AGGREGATE["cd"] if p.suffix != ".png"],
    log:
        f"logs/aggregate/{NAME}.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "python -m benchmark aggregate --config-file {input.config} > {log} 2>&1"


# A grid with a `claim:` block writes its claim document from its cells (benchmark/claims.py).
rule claim:
    input:
        markers=GRID.markers,
        config=GRID_CONFIG,
        code=code_input(["benchmark.claims", "benchmark.aggregate", "benchmark.stats"]),
    output:
        config["claim"]["out"] if "claim" in config else "results/claims/none.md",
    log:
        f"logs/claim/{NAME}.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "python -m benchmark claim --config-file {input.config} > {log} 2>&1"


# The grid's config as a file (see GRID_CONFIG in common.smk).
rule grid_config:
    output:
        GRID_CONFIG,
    log:
        f"logs/grids/{NAME}.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        config_sha256=TABLE_CONFIG_SHA256,
    shell:
        "python -m benchmark write-config --out {output} > {log} 2>&1"
