"""The 3-layer CNN of CLOCS (Kiyasseh et al. 2021) over single-lead segments."""

from __future__ import annotations

from torch import Tensor, nn


class ClocsCNN(nn.Module):
    """The 3-layer 1-D CNN of CLOCS (Kiyasseh, Zhu & Clifton, ICML 2021, appendix).

    Three blocks Conv1d(kernel 7, stride 3, no padding) -> BatchNorm -> ReLU -> MaxPool(2) ->
    Dropout(0.1), channels 1 -> 4 -> 16 -> 32, then the flattened feature map goes through one
    linear layer to ``embedding_dim`` (256). On a 2,500-sample segment the map is 32 x 10 = 320
    wide (2500 -> 832 -> 416 -> 137 -> 68 -> 21 -> 10), the paper's network. Other segment
    lengths get the linear layer their flattened width needs (``segment_samples`` >= 388).

    A single-lead network (``in_leads`` = 1): CLOCS encodes every lead and segment separately
    with the same weights; :class:`ecgbench.methods.clocs.SegmentLeadEncoder` does that.
    """

    def __init__(
        self,
        segment_samples: int = 2500,
        in_leads: int = 1,
        channels: tuple[int, ...] = (4, 16, 32),
        kernel_size: int = 7,
        stride: int = 3,
        pool: int = 2,
        dropout: float = 0.1,
        embedding_dim: int = 256,
    ):
        super().__init__()
        layers: list[nn.Module] = []
        c_in, length = in_leads, int(segment_samples)
        for c_out in channels:
            layers += [nn.Conv1d(c_in, c_out, kernel_size, stride=stride), nn.BatchNorm1d(c_out),
                       nn.ReLU(inplace=True), nn.MaxPool1d(pool), nn.Dropout(dropout)]
            length = ((length - kernel_size) // stride + 1) // pool
            c_in = c_out
        if length < 1:
            raise ValueError(f"ClocsCNN: {segment_samples} samples are too short for "
                             f"{len(channels)} blocks of kernel {kernel_size}, stride {stride}")
        self.features = nn.Sequential(*layers)
        self.flat_dim = int(c_in * length)
        self.head = nn.Linear(self.flat_dim, embedding_dim)
        self.segment_samples = int(segment_samples)
        self.embedding_dim = int(embedding_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))  # (B, C, T') -> (B, embedding_dim)
