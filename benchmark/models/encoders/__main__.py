"""python -m ecgbench.models.encoders: the paper-size encoders' parameter counts."""

import torch

from ecgbench.models.encoders import TransformCNN, paper_sizes

for name, n in paper_sizes().items():
    print(f"{name}: {n:,}")
print(TransformCNN()(torch.zeros(2, 1, 2560)).shape)


