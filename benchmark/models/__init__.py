"""Models, one module per family, registered in benchmark/registry.py.

Every model starts from random initialisation; no pre-trained weights are ever loaded. A model has
`features` (images -> pooled features) and `head` (features -> outputs); its forward is head(features(x)).
"""
