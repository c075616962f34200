"""Datasets: one module per dataset (FACTS, the published counts checked at preparation; `build(settings)`,
the canonical arrays; SOURCES and `download(settings)` where there are files to fetch), registered in
benchmark/registry.py, with its settings in config/datasets.yaml and its stages in dvc.yaml. The shared
machinery: download.py, extract.py, images.py, prepared.py (the prepared form), subsets.py."""
