"""The benchmarked workloads and how each contender runs one of them.

A workload builds, for one contender, a zero-argument ``step`` callable that does the timed
work once.  Every contender of a workload starts from the same weights and the same data, in
float32, and training steps use plain SGD.  fastnet nets run with per-call input validation off,
as the trainer runs them after checking the dataset once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy

LEARNING_RATE = 0.01


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    kind: str        # "mlp" or "convnet"
    sizes: tuple     # layer widths for an MLP; unused for the convnet
    batch: int
    train: bool      # a training step (forward, backward, SGD) or one inference pass


WORKLOADS = {w.name: w for w in (
    Workload("two_layer_step", "TwoLayerNet 784-50-10, SGD step, batch 100", "mlp", (784, 50, 10), 100, True),
    Workload("mlp_step", "MLP 784-1000-1000-10, SGD step, batch 256", "mlp", (784, 1000, 1000, 10), 256, True),
    Workload("convnet_step", "SimpleConvNet (30 5x5 filters), SGD step, batch 100", "convnet", (), 100, True),
    Workload("two_layer_infer", "TwoLayerNet 784-50-10, inference over 10,000 images", "mlp",
             (784, 50, 10), 10_000, False),
)}


def make_data(workload: Workload, seed: int = 0):
    rng = numpy.random.default_rng(seed)
    shape = (workload.batch, 1, 28, 28) if workload.kind == "convnet" else (workload.batch, 784)
    x = rng.random(shape, dtype=numpy.float32)
    t = rng.integers(0, 10, workload.batch)
    return x, t


def make_fastnet_net(workload: Workload, backend, seed: int = 0):
    from fastnet.nets.convnets import SimpleConvNet
    from fastnet.nets.mlp import MultiLayerNet, TwoLayerNet

    if workload.kind == "convnet":
        net = SimpleConvNet(backend=backend, seed=seed)
    elif len(workload.sizes) == 3:
        net = TwoLayerNet(*workload.sizes, backend=backend, seed=seed)
    else:
        net = MultiLayerNet(workload.sizes[0], list(workload.sizes[1:-1]), workload.sizes[-1],
                            backend=backend, seed=seed)
    return net.set_validation(False)


def fastnet_step(workload: Workload, backend_name: str):
    from fastnet.backends import get_backend
    from fastnet.optim import SGD

    backend = get_backend(backend_name)
    net = make_fastnet_net(workload, backend)
    x, t = (backend.asarray(a) for a in make_data(workload))
    if not workload.train:
        return lambda: net.predict(x)
    optimizer = SGD(lr=LEARNING_RATE)

    def step():
        optimizer.update(net.params, net.gradient(x, t))
    return step


def host_params(workload: Workload) -> dict:
    """The starting weights as numpy arrays, keyed W1, b1, ... (the same for every contender)."""
    net = make_fastnet_net(workload, "numpy")
    return {key: numpy.array(value) for key, value in net.params.items()}


def matmul_bound_step(workload: Workload):
    """Only the matrix products the step needs, on the same shapes: a lower bound on the step."""
    params = host_params(workload)
    x, _ = make_data(workload)
    rng = numpy.random.default_rng(1)

    def like(shape):
        return rng.standard_normal(shape).astype(numpy.float32)

    if workload.kind == "convnet":
        W1 = params["W1"].reshape(params["W1"].shape[0], -1)
        col = like((workload.batch * 24 * 24, W1.shape[1]))
        pooled = like((workload.batch, params["W2"].shape[0]))
        products = [(col, W1.T), (pooled, params["W2"]), (like((workload.batch, 100)), params["W3"])]
        backward = [(like((workload.batch, 10)), params["W3"].T), (like((100, workload.batch)), like((workload.batch, 10))),
                    (like((workload.batch, 100)), params["W2"].T), (pooled.T, like((workload.batch, 100))),
                    (like((W1.shape[0], col.shape[0])), col)]
    else:
        weights = [params[f"W{i}"] for i in range(1, len(workload.sizes))]
        acts = [x] + [like((workload.batch, W.shape[1])) for W in weights[:-1]]
        products = list(zip(acts, weights))
        backward = []
        for i in reversed(range(len(weights))):
            grad = like((workload.batch, weights[i].shape[1]))
            backward.append((acts[i].T, grad))            # dW
            if i > 0:
                backward.append((grad, weights[i].T))     # dx (never for the first layer)
    pairs = products + (backward if workload.train else [])

    def step():
        for a, b in pairs:
            a @ b
    return step
