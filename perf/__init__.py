"""Speed harness of the benchmark: `python -m perf [--parts ...] [--out results/perf] [--quick]`.

It runs from the repository (it is not part of the installed `benchmark` package) and measures
the figures docs/performance.md sets targets for, each in its own part (a module here with
`run(quick: bool, **options) -> dict`), with the real command line tools in scratch folders:

- fixed_cost: one cell job that barely trains (interpreter start, imports, data, MLflow), and the
  import costs behind it;
- dag: Snakemake's dry run on the paper grids and a synthetic 10,000-cell grid, and the no-op rerun of
  config/paper.yaml with every output present;
- aggregation: tables and plots of 10,000 synthetic cells;
- throughput: training images per second of our step against a plain reference loop, the
  ablation of precision and layout, FLOPs and the fraction of the bf16 peak on known GPUs;
- packing: small cells per hour, one cell per process against several seeds per process;
- tracking: the per-epoch cost of a cell's live MLflow run, against the epoch time;
- default_grid: the default grid end to end (minutes; only when named).

Each part writes <out>/<part>.json with the machine it ran on; summary.md is rebuilt from every
JSON in <out>, so results copied from another machine (a GPU's throughput_cuda.json) show too.
"""

# part name -> module; the order is the order of the summary
PARTS = {
    "fixed_cost": "perf.fixed_cost",
    "dag": "perf.dag",
    "aggregation": "perf.aggregation",
    "throughput": "perf.throughput",
    "packing": "perf.packing",
    "tracking": "perf.tracking",
    "default_grid": "perf.default_grid",
}
