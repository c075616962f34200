# Tables (with statistics) and plots of the whole grid, from its cells' records: every pack's marker
# is an input, so the tables are rebuilt whenever a cell is (re)trained. Its params are the config
# without the settings that cannot change a table (threads, packing, device).
import hashlib

from benchmark.aggregate import outputs as _aggregate_outputs

AGGREGATE = _aggregate_outputs(config)
# The table config goes into the commands as a global (so the report does not show it as a job parameter);
# its hash is the parameter, so that changing it reruns the jobs that read it.
TABLE_CONFIG = json.dumps(table_config(config), sort_keys=True)
TABLE_CONFIG_SHA256 = hashlib.sha256(TABLE_CONFIG.encode()).hexdigest()[:16]


def aggregate_outputs():
    return [str(p) for group in AGGREGATE.values() for p in group]


rule aggregate:
    input:
        markers=GRID.markers,
        reference=reference_files(),
        code=code_files(["benchmark.aggregate", "benchmark.tables", "benchmark.plots", "benchmark.stats"]),
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
    params:
        config_sha256=TABLE_CONFIG_SHA256,
    shell:
        "{PYTHON} -m benchmark aggregate --config-json {TABLE_CONFIG:q} > {log} 2>&1"


# A grid with a `claim:` block writes its claim document from its cells (benchmark/claims.py).
rule claim:
    input:
        markers=GRID.markers,
        code=code_files(["benchmark.claims", "benchmark.aggregate", "benchmark.stats"]),
    output:
        config["claim"]["out"] if "claim" in config else "results/claims/none.md",
    log:
        f"logs/claim/{NAME}.log",
    localrule: True
    params:
        config_sha256=TABLE_CONFIG_SHA256,
    shell:
        "{PYTHON} -m benchmark claim --config-json {TABLE_CONFIG:q} > {log} 2>&1"
