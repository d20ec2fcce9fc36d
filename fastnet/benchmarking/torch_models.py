"""The same nets in PyTorch (CPU, float32), started from the same weights, trained by plain SGD.

PyTorch keeps its default thread count (``torch.get_num_threads()``, recorded in the results).
"""
from __future__ import annotations

import numpy

from fastnet.benchmarking.workloads import LEARNING_RATE, Workload, host_params, make_data


def torch_step(workload: Workload):
    import torch
    from torch import nn

    params = host_params(workload)
    if workload.kind == "convnet":
        fn, c, fh, fw = params["W1"].shape
        model = nn.Sequential(nn.Conv2d(c, fn, (fh, fw)), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                              nn.Linear(*params["W2"].shape), nn.ReLU(), nn.Linear(*params["W3"].shape))
        layers = [m for m in model if isinstance(m, (nn.Conv2d, nn.Linear))]
    else:
        modules = []
        for i in range(1, len(workload.sizes)):
            modules += [nn.Linear(workload.sizes[i - 1], workload.sizes[i]), nn.ReLU()]
        model = nn.Sequential(*modules[:-1])
        layers = [m for m in model if isinstance(m, nn.Linear)]
    with torch.no_grad():
        for i, layer in enumerate(layers, start=1):
            W = params[f"W{i}"]
            # fastnet's Affine W is (in, out); torch's Linear weight is (out, in).
            layer.weight.copy_(torch.from_numpy(numpy.ascontiguousarray(W if W.ndim == 4 else W.T)))
            layer.bias.copy_(torch.from_numpy(params[f"b{i}"]))
    x, t = make_data(workload)
    x, t = torch.from_numpy(x), torch.from_numpy(t)
    if not workload.train:
        model.eval()

        def infer():
            with torch.no_grad():
                model(x)
        return infer
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), t).backward()
        optimizer.step()
    return step


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True
