"""The strong-baseline training recipe, batched on the device: Mixup, CutMix, TrivialAugment wide,
random erasing and an EMA of the weights (benchmark/recipe/pipeline.py puts them together for a cell).

Order per training batch (uint8 or float pixels 0..255, (N, C, H, W)): crop as the dataset says,
TrivialAugment, float, flips and shifts, random erasing, normalisation, then mixup or CutMix; the loss
is lam L(out, y_a) + (1 - lam) L(out, y_b). Validation and test evaluate the EMA copy.
"""
