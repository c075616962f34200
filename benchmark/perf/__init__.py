"""Performance harness: `python -m benchmark.perf [--parts ...] [--out results/perf] [--quick]`.

Measures what the speed targets are about, each in its own part (a module here with
`run(quick: bool) -> dict`), with the real command line tools in scratch folders:

- fixed_cost: one cell job that barely trains (interpreter start, imports, data, MLflow), and the
  import costs behind it;
- dag: Snakemake's dry run on the paper grids and a synthetic 10,000-cell grid;
- aggregation: tables and plots of 10,000 synthetic cells;
- throughput: training images per second of our step against a reference loop;
- default_grid: the default grid end to end (minutes; only when named).

Each part writes <out>/<part>.json with the machine it ran on; summary.md is rebuilt from every
JSON in <out>, so results copied from another machine (a GPU's throughput_cuda.json) show too.
"""
