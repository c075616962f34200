# Benchmark of losses for deep learning on small datasets without pre-training.
#   snakemake --cores all                                  the default grid (config/config.yaml)
#   snakemake --cores all --configfile config/other.yaml   another grid
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/embeddings.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/aggregate.smk"


rule all:
    input:
        all_outputs(),
    default_target: True
