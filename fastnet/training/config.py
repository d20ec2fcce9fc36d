"""A run's configuration: everything needed to rebuild its net, optimizer and batches."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from fastnet.errors import InputError

NET_NAMES = ("two-layer", "mlp", "simple-conv", "deep-conv")
CONV_NETS = ("simple-conv", "deep-conv")
# What a resumed run may change: anything else alters the net, the data or the batches.
ADJUSTABLE_ON_RESUME = ("epochs", "lr")


@dataclass
class RunConfig:
    net: str = "two-layer"
    dataset: str = "mnist"
    epochs: int = 17
    batch_size: int = 100
    lr: float = 0.1
    optimizer: str = "sgd"
    hidden: list = field(default_factory=lambda: [50])
    weight_decay: float = 0.0
    dropout: float = 0.0
    batchnorm: bool = False
    dtype: str = "float32"
    seed: int = 0
    limit: int | None = None  # train on the first ``limit`` training samples only

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        if not isinstance(data, dict):
            raise InputError(f"a run configuration must be a dict, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def check(self) -> "RunConfig":
        if self.net not in NET_NAMES:
            raise InputError(f"unknown net '{self.net}'; choose one of: {', '.join(NET_NAMES)}")
        for name in ("epochs", "batch_size", "seed", "limit"):
            value = getattr(self, name)
            if name == "limit" and value is None:
                continue
            least = 0 if name == "seed" else 1
            if not _is_int(value) or value < least:
                kind = "an integer >= 0" if least == 0 else "a positive integer"
                raise InputError(f"--{name.replace('_', '-')} must be {kind}; got {value!r}")
        if not _is_number(self.lr) or not self.lr > 0:
            raise InputError(f"--lr must be a positive number; got {self.lr!r}")
        if (not isinstance(self.hidden, (list, tuple)) or not self.hidden
                or not all(_is_int(h) and h >= 1 for h in self.hidden)):
            raise InputError(f"--hidden needs positive layer sizes; got {self.hidden!r}")
        if not _is_number(self.dropout) or not 0 <= self.dropout < 1:
            raise InputError(f"--dropout must be in [0, 1); got {self.dropout!r}")
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            raise InputError(f"--weight-decay must be >= 0; got {self.weight_decay!r}")
        if not isinstance(self.batchnorm, bool):
            raise InputError(f"batchnorm must be true or false; got {self.batchnorm!r}")
        if self.dtype not in ("float32", "float64"):
            raise InputError(f"--dtype must be float32 or float64; got {self.dtype!r}")
        if not isinstance(self.optimizer, str) or not isinstance(self.dataset, str):
            raise InputError("optimizer and dataset must be names")
        self.hidden = list(self.hidden)
        return self

    @property
    def flatten(self) -> bool:
        return self.net not in CONV_NETS


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def build_net(config: RunConfig, backend, input_shape, output_size=10):
    """The net a config describes, initialised from its seed."""
    from fastnet.nets import DeepConvNet, MultiLayerNet, SimpleConvNet, TwoLayerNet

    common = dict(backend=backend, dtype=config.dtype, seed=config.seed)
    if config.net == "two-layer":
        return TwoLayerNet(input_shape[0], config.hidden[0], output_size, **common)
    if config.net == "mlp":
        return MultiLayerNet(input_shape[0], list(config.hidden), output_size,
                             weight_decay_lambda=config.weight_decay, use_dropout=config.dropout > 0,
                             dropout_ratio=config.dropout or 0.5, use_batchnorm=config.batchnorm, **common)
    if config.net == "simple-conv":
        return SimpleConvNet(tuple(input_shape), hidden_size=config.hidden[0], output_size=output_size,
                             **common)
    return DeepConvNet(tuple(input_shape), output_size=output_size, **common)
