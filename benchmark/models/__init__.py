"""Model registry: config name -> "module:constructor(in_channels, output_dim)".

Every model starts from random initialisation; no pre-trained weights are ever loaded.
"""

from benchmark.registry import resolve

MODELS: dict[str, str] = {
    "small_cnn": "benchmark.models.small_cnn:SmallCNN",
    "resnet50": "benchmark.models.resnet:resnet50",
    "cifar_resnet110_wide": "benchmark.models.resnet:cifar_resnet110_wide",
}


def build_model(name: str, in_channels: int, output_dim: int):
    return resolve(MODELS, name, "model")(in_channels=in_channels, output_dim=output_dim)
