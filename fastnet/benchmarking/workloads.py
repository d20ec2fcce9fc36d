"""The benchmarked workloads and how each contender runs one of them.

A contender is a zero-argument ``step`` doing the timed work once, a ``sync`` that waits for
the device (a no-op on the CPU), and the thread choice it runs under.  Every contender of a
workload starts from the same weights and the same data, in float32; training steps use plain
SGD.  fastnet runs through its public API with its defaults, as a user calls it:
``optimizer.update(net.params, net.gradient(x, t))`` and ``net.predict(x)``, input validation on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy

LEARNING_RATE = 0.01


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    net: str  # a key of NETS
    batch: int
    train: bool  # a training step (forward, backward, SGD) or one inference pass
    busy: int = 0  # other busy processes on the cores while it is timed (the contention case)


def _two_layer(backend):
    from fastnet.nets import TwoLayerNet

    return TwoLayerNet(784, 50, 10, backend=backend, seed=0)


def _wide_mlp(backend):
    from fastnet.nets import MultiLayerNet

    return MultiLayerNet(784, [1000, 1000], 10, backend=backend, seed=0)


def _simple_conv(backend):
    from fastnet.nets import SimpleConvNet

    return SimpleConvNet(backend=backend, seed=0)


def _deep_conv(backend):
    from fastnet.nets import DeepConvNet

    return DeepConvNet(backend=backend, seed=0)


# name -> (builder taking a backend, the shape of one sample, a label)
NETS = {
    "two-layer": (_two_layer, (784,), "TwoLayerNet 784-50-10"),
    "wide-mlp": (_wide_mlp, (784,), "MLP 784-1000-1000-10"),
    "simple-conv": (_simple_conv, (1, 28, 28), "SimpleConvNet (30 5x5 filters)"),
    "deep-conv": (_deep_conv, (1, 28, 28), "DeepConvNet (6 convs 3x3)"),
}

WORKLOADS = {
    w.name: w
    for w in (
        Workload("two_layer_step", "TwoLayerNet 784-50-10, SGD step, batch 100", "two-layer", 100, True),
        Workload("mlp_step", "MLP 784-1000-1000-10, SGD step, batch 256", "wide-mlp", 256, True),
        Workload("convnet_step", "SimpleConvNet (30 5x5 filters), SGD step, batch 100", "simple-conv", 100, True),
        Workload(
            "deep_convnet_step", "DeepConvNet (the book's, 6 convs 3x3), SGD step, batch 100", "deep-conv", 100, True
        ),
        Workload(
            "two_layer_infer", "TwoLayerNet 784-50-10, net.predict over 10,000 images", "two-layer", 10_000, False
        ),
        # One image at a time, as a server or an app predicts: the per-call costs are all there is.
        Workload("two_layer_one_image", "TwoLayerNet 784-50-10, net.predict on one image", "two-layer", 1, False),
        Workload("convnet_one_image", "SimpleConvNet, net.predict on one image", "simple-conv", 1, False),
        Workload("deep_convnet_one_image", "DeepConvNet, net.predict on one image", "deep-conv", 1, False),
        Workload(
            "two_layer_contended",
            "TwoLayerNet 784-50-10, SGD step, batch 100, two other busy processes on the cores",
            "two-layer",
            100,
            True,
            busy=2,
        ),
    )
}
QUIET_TWIN = {"two_layer_contended": "two_layer_step"}  # the same step without the load


def step_workload(net: str, batch: int) -> Workload:
    """A training-step workload of any net and batch (the GPU benchmark's sizes)."""
    label = NETS[net][2]
    return Workload(f"{net}_b{batch}", f"{label}, SGD step, batch {batch}", net, batch, True)


def make_data(workload: Workload, seed: int = 0):
    rng = numpy.random.default_rng(seed)
    x = rng.random((workload.batch, *NETS[workload.net][1]), dtype=numpy.float32)
    t = rng.integers(0, 10, workload.batch)
    return x, t


def make_fastnet_net(workload: Workload, backend):
    return NETS[workload.net][0](backend)


def host_params(workload: Workload) -> dict:
    """The starting weights as numpy arrays, keyed W1, b1, ... (the same for every contender)."""
    net = make_fastnet_net(workload, "numpy")
    return {key: numpy.array(value) for key, value in net.params.items()}


@dataclass
class Contender:
    step: object  # zero-argument callable: the timed work, once
    sync: object = lambda: None  # waits for the device before a clock is read
    threads: object = None  # a fastnet.threads.ThreadChoice, or None: its own
    info: dict = field(default_factory=dict)
    net: object = None  # the fastnet net timed, when there is one


def fastnet_contender(workload: Workload, backend_name: str, threads=None) -> Contender:
    from fastnet.backends import get_backend
    from fastnet.optim import SGD
    from fastnet.profiling.thread_choice import threads_for

    backend = get_backend(backend_name)
    net = make_fastnet_net(workload, backend)
    x, t = (backend.asarray(a) for a in make_data(workload))
    choice = threads_for(net, NETS[workload.net][1], workload.batch, threads)
    info = {"threads": choice.describe()}
    if not workload.train:
        return Contender(lambda: net.predict(x), backend.synchronize, choice, info, net)
    optimizer = SGD(lr=LEARNING_RATE)

    def step():
        optimizer.update(net.params, net.gradient(x, t))

    return Contender(step, backend.synchronize, choice, info, net)


def matmul_bound_contender(workload: Workload, threads=None) -> Contender:
    """Only the matrix products the step needs, on the same shapes: a lower bound on the step.

    Forward: each layer's product (im2col for a convolution); backward: the weight gradient and,
    except for the first layer, the input gradient.  Run under the thread choice fastnet gets.
    """
    from fastnet.profiling.shapes import forward_products
    from fastnet.profiling.thread_choice import threads_for

    net = make_fastnet_net(workload, "numpy")
    shape = NETS[workload.net][1]
    rng = numpy.random.default_rng(1)

    def like(rows, cols):
        return rng.standard_normal((rows, cols)).astype(numpy.float32)

    pairs = []
    for i, (m, k, n) in enumerate(forward_products(net, shape, workload.batch)):
        a, w, grad = like(m, k), like(k, n), like(m, n)
        pairs.append((a, w))
        if workload.train:
            pairs.append((a.T, grad))  # dW
            if i > 0:
                pairs.append((grad, w.T))  # dx (never for the first layer)

    def step():
        for a, b in pairs:
            a @ b

    return Contender(step, threads=threads_for(net, shape, workload.batch, threads))
