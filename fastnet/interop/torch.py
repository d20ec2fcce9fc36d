"""fastnet nets as ``torch.nn.Sequential`` and back, with the very same weights.

Affine becomes Linear (its W transposed: fastnet computes x @ W, torch x @ weight.T), with a
Flatten in front where it follows a convolution; BatchNormalization becomes BatchNorm1d/2d with
fastnet's epsilon; Dropout becomes ``TestTimeDropout``, which behaves as fastnet's does (drop
without rescaling while training, scale by (1 - ratio) at test time: torch's own Dropout
rescales while training instead, so a net trained with it needs no scaling at test time and
``from_torch`` drops it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy

from fastnet.annotations import BackendLike, DTypeLike, PathLike
from fastnet.errors import InputError
from fastnet.interop.spec import describe_layers, unsupported

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from fastnet.nets import Sequential


def _nn():
    try:
        import torch
    except ImportError:
        raise InputError("PyTorch is not installed; pip install 'fastnet[torch]'") from None
    return torch


def _dropout_class():
    torch = _nn()

    class TestTimeDropout(torch.nn.Module):  # type: ignore[name-defined]  # torch is imported when first used
        """fastnet's (and the book's) dropout: training masks without rescaling; test time
        multiplies by (1 - p)."""

        def __init__(self, p=0.5):
            super().__init__()
            self.p = float(p)

        def forward(self, x):
            if self.training:
                return x * (torch.rand_like(x) > self.p)
            return x * (1.0 - self.p)

        def extra_repr(self):
            return f"p={self.p}"

    return TestTimeDropout


_DROPOUT = None


def test_time_dropout(p: float) -> torch.nn.Module:
    """A ``TestTimeDropout`` module: fastnet's dropout rule, in torch."""
    global _DROPOUT
    if _DROPOUT is None:
        _DROPOUT = _dropout_class()
    return _DROPOUT(p)


def to_torch(net: Sequential) -> torch.nn.Sequential:
    """``net`` (any backend) as a ``torch.nn.Sequential`` in the net's dtype, in eval mode."""
    torch = _nn()
    nn = torch.nn
    describe_layers(net)  # names every layer torch cannot take, in one line
    host = net.backend.to_numpy

    def tensor(a, transpose=False):
        a = host(a)
        return torch.from_numpy(numpy.ascontiguousarray(a.T if transpose else a).copy())

    modules, images = [], getattr(net.input_layer, "W", numpy.zeros((1, 1))).ndim == 4
    for layer in net.layers.values():
        kind = type(layer).__name__
        if kind == "Affine":
            if images:
                modules.append(nn.Flatten())  # fastnet's Affine flattens (N, C, H, W) itself
                images = False
            module = nn.Linear(*layer.W.shape)
            module.weight.data, module.bias.data = tensor(layer.W, transpose=True), tensor(layer.b)
        elif kind == "Convolution":
            W = layer.W
            module = nn.Conv2d(W.shape[1], W.shape[0], tuple(W.shape[2:]), stride=layer.stride, padding=layer.pad)
            module.weight.data, module.bias.data = tensor(W), tensor(layer.b)
        elif kind == "Pooling":
            module = nn.MaxPool2d((layer.pool_h, layer.pool_w), layer.stride, layer.pad)
        elif kind == "Relu":
            module = nn.ReLU()
        elif kind == "Sigmoid":
            module = nn.Sigmoid()
        elif kind == "Dropout":
            module = test_time_dropout(layer.dropout_ratio)
        else:  # BatchNormalization
            norm = nn.BatchNorm2d if images else nn.BatchNorm1d
            module = norm(layer.gamma.shape[0], eps=layer.eps, momentum=1.0 - layer.momentum)
            module.weight.data, module.bias.data = tensor(layer.gamma), tensor(layer.beta)
            module.running_mean.data, module.running_var.data = tensor(layer.running_mean), tensor(layer.running_var)
        modules.append(module)
    model = nn.Sequential(*modules).to(torch.float64 if net.dtype == numpy.float64 else torch.float32)
    return model.eval()


def from_torch(module: torch.nn.Sequential, backend: BackendLike = None, dtype: DTypeLike = "float32") -> Sequential:
    """A fastnet Sequential from a ``torch.nn.Sequential`` of Linear, Conv2d, MaxPool2d, ReLU,
    Sigmoid, BatchNorm1d/2d, Flatten and dropout; parameters named W1, b1, ... in order."""
    from fastnet import layers as L
    from fastnet.nets import Sequential

    torch = _nn()
    nn = torch.nn
    net = Sequential(backend=backend, dtype=dtype)
    counts: dict[str, int] = {}
    foreign = []

    def numbered(kind):
        counts[kind] = counts.get(kind, 0) + 1
        return counts[kind]

    def host(t):
        return t.detach().cpu().numpy()

    children = list(module.children()) if isinstance(module, nn.Sequential) else [module]
    for index, child in enumerate(children):
        kind = type(child).__name__
        if isinstance(child, nn.Linear):
            i = numbered("weighted")
            net.add(f"Affine{i}", L.Affine(host(child.weight).T, host(child.bias)), suffix=i)
        elif isinstance(child, nn.Conv2d) and _plain_conv(child):
            i = numbered("weighted")
            net.add(
                f"Conv{i}",
                L.Convolution(host(child.weight), host(child.bias), child.stride[0], child.padding[0]),
                suffix=i,
            )
        elif isinstance(child, nn.MaxPool2d) and _plain_pool(child):
            size, stride, pad = (_pair(v) for v in (child.kernel_size, child.stride, child.padding))
            net.add(f"Pool{numbered('Pool')}", L.Pooling(size[0], size[1], stride[0], pad[0]))
        elif isinstance(child, nn.ReLU):
            net.add(f"Relu{numbered('Relu')}", L.Relu())
        elif isinstance(child, nn.Sigmoid):
            net.add(f"Sigmoid{numbered('Sigmoid')}", L.Sigmoid())
        elif isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)) and _fastnet_eps(child):
            i = numbered("BatchNorm")
            net.add(
                f"BatchNorm{i}",
                L.BatchNormalization(
                    host(child.weight),
                    host(child.bias),
                    momentum=1.0 - (child.momentum or 0.1),
                    running_mean=host(child.running_mean),
                    running_var=host(child.running_var),
                ),
                suffix=i,
            )
        elif kind == "TestTimeDropout":
            net.add(f"Dropout{numbered('Dropout')}", L.Dropout(child.p))
        elif isinstance(child, (nn.Flatten, nn.Dropout, nn.Identity)):
            continue  # fastnet's Affine flattens; torch's dropout is the identity at test time
        else:
            foreign.append((f"{index}", kind))
    if foreign:
        raise unsupported(foreign, "from_torch")
    return net


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _plain_conv(conv):
    return (
        conv.bias is not None
        and conv.groups == 1
        and _pair(conv.dilation) == (1, 1)
        and len(set(_pair(conv.stride))) == 1
        and isinstance(conv.padding, tuple)
        and len(set(conv.padding)) == 1
        and conv.padding_mode == "zeros"
    )


def _plain_pool(pool):
    return (
        len(set(_pair(pool.stride))) == 1
        and len(set(_pair(pool.padding))) == 1
        and _pair(pool.dilation) == (1, 1)
        and not pool.ceil_mode
    )


def _fastnet_eps(norm):
    from fastnet.layers import BatchNormalization

    if norm.affine and norm.track_running_stats and abs(norm.eps - BatchNormalization.eps) <= 1e-12:
        return True
    raise InputError(
        f"from_torch needs BatchNorm with affine=True, running statistics and "
        f"eps={BatchNormalization.eps} (fastnet's); got eps={norm.eps}"
    )


def save_torch(net: Sequential, path: PathLike, dataset: str = "mnist") -> Path:
    """A file ``torch.load(path, weights_only=True)`` reads: the state dict of ``to_torch(net)``
    and the fastnet layer description (plain strings and numbers)."""
    import io

    from fastnet.atomic import atomic_write

    torch = _nn()
    model = to_torch(net)
    payload = {
        "state_dict": model.state_dict(),
        "fastnet_layers": describe_layers(net),
        "modules": [type(m).__name__ for m in model],
        "dataset": dataset,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))
