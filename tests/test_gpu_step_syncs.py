"""The cupy training step makes no device-to-host transfer between logging intervals.

Runs the cupy backend's code path (``CupyKernels``, the CUDA source emulated on the host) on
arrays that count every read back to the host (tests/gpu_shim.py), with input validation on,
the default the benchmarks time.  Bad values are still caught: the check waits on the device
and names the batch when the flags are read.
"""

import numpy
import pytest
from cuda_host import HostLauncher, build_host_library
from gpu_shim import TRANSFERS, CountedGpuBackend

from fastnet.errors import InputError
from fastnet.nets import DeepConvNet, MultiLayerNet, SimpleConvNet, TwoLayerNet
from fastnet.optim import SGD, Adam

LOG_EVERY = 4


@pytest.fixture(scope="module")
def gpu(tmp_path_factory):
    lib = build_host_library(tmp_path_factory.mktemp("kernels"))
    if lib is None:
        pytest.skip("no C++ compiler to run the CUDA kernels on the host")
    return CountedGpuBackend(HostLauncher(lib))


NETS = {
    "two-layer": (lambda be: TwoLayerNet(12, 8, 5, backend=be, seed=1), (6, 12)),
    "mlp-batchnorm": (
        lambda be: MultiLayerNet(12, [8, 8], 5, use_batchnorm=True, weight_decay_lambda=0.01, backend=be, seed=2),
        (6, 12),
    ),
    "simple-conv": (
        lambda be: SimpleConvNet(
            (1, 8, 8), {"filter_num": 2, "filter_size": 3}, hidden_size=6, output_size=5, backend=be, seed=3
        ),
        (3, 1, 8, 8),
    ),
    "deep-conv": (lambda be: DeepConvNet((1, 8, 8), hidden_size=6, output_size=5, backend=be, seed=4), (2, 1, 8, 8)),
}


def _data(gpu, shape, onehot=False):
    rng = numpy.random.default_rng(0)
    x = gpu.asarray(rng.standard_normal(shape).astype(numpy.float32))
    labels = rng.integers(0, 5, shape[0])
    t = gpu.asarray(numpy.eye(5, dtype=numpy.float32)[labels] if onehot else labels)
    return x, t


def _step(net, optimizer, x, t):
    optimizer.update(net.params, net.gradient(x, t))


@pytest.mark.parametrize("onehot", [False, True], ids=["labels", "onehot"])
@pytest.mark.parametrize("name", list(NETS))
def test_no_transfer_between_logging_intervals(checking_gpu, name, onehot):
    gpu = checking_gpu
    make, shape = NETS[name]
    net = make(gpu)
    net.value_checks.every = LOG_EVERY
    assert net.validate_inputs  # the checks are on, as in the benchmarks
    optimizer = Adam(lr=0.001) if name == "deep-conv" else SGD(lr=0.1)
    x, t = _data(gpu, shape, onehot)
    _step(net, optimizer, x, t)  # the first step may set things up
    net.value_checks.raise_pending()
    for interval in range(2):
        TRANSFERS.reads.clear()
        loss = net.last_loss * 0
        for _ in range(LOG_EVERY - 1):
            _step(net, optimizer, x, t)
            loss = loss + net.last_loss
        assert TRANSFERS.reads == [], f"interval {interval}: {TRANSFERS.reads}"
        # where the trainer reads the loss: one read for it, one for the checks
        assert numpy.isfinite(float(loss))
        net.value_checks.raise_pending()
        assert len(TRANSFERS) == 2, TRANSFERS.reads


def test_the_net_reads_its_checks_once_every_interval_by_itself(gpu):
    make, shape = NETS["two-layer"]
    net = make(gpu)
    net.value_checks.every = LOG_EVERY
    optimizer = SGD(lr=0.1)
    x, t = _data(gpu, shape)
    TRANSFERS.reads.clear()
    for _ in range(3 * LOG_EVERY):
        _step(net, optimizer, x, t)
    assert len(TRANSFERS) == 2 and all("asnumpy" in r for r in TRANSFERS.reads), TRANSFERS.reads


@pytest.fixture(params=["cuda-checks", "generic-checks"])
def checking_gpu(request, gpu):
    """The cupy kernels' one-launch checks, and the generic array-op form other kernel sets get."""
    if request.param == "cuda-checks":
        return gpu
    generic = CountedGpuBackend(gpu.kernels.launch)
    generic.kernels.checks = None
    return generic


@pytest.mark.parametrize("problem", ["nan-x", "label", "onehot-row"])
def test_a_bad_batch_is_named_when_the_checks_are_read(checking_gpu, problem):
    gpu = checking_gpu
    make, shape = NETS["simple-conv"]
    net = make(gpu)
    net.value_checks.every = 100
    optimizer = SGD(lr=0.1)
    x, t = _data(gpu, shape, onehot=problem == "onehot-row")
    bad_x, bad_t = x.copy(), t.copy()
    if problem == "nan-x":
        bad_x[1, 0, 2, 3] = numpy.nan
    elif problem == "label":
        bad_t[2] = 5
    else:
        bad_t[0] = 0.7
    TRANSFERS.reads.clear()
    for batch in range(1, 6):
        _step(net, optimizer, *((bad_x, bad_t) if batch in (3, 5) else (x, t)))
    assert TRANSFERS.reads == []  # nothing read yet: the GPU is never stopped
    want = {
        "nan-x": r"x contains NaN or inf values.*; clean or re-normalise the input",
        "label": r"t contains a label outside the 5 classes 0\.\.4; give labels in that range",
        "onehot-row": r"one-hot t has a row that is not one-hot; each row needs a single 1",
    }[problem]
    with pytest.raises(InputError, match=r"^batch 3 of the last 5 checked: " + want) as caught:
        net.value_checks.raise_pending()
    assert "\n" not in str(caught.value)
    net.value_checks.raise_pending()  # reported once; the flags start afresh


def test_cpu_backends_still_refuse_at_once():
    net = TwoLayerNet(4, 3, 2, backend="numpy", seed=0)
    x = numpy.ones((2, 4), numpy.float32)
    x[0, 1] = numpy.inf
    with pytest.raises(InputError, match=r"^x contains 1 NaN or inf value"):
        net.gradient(x, numpy.array([0, 1]))
    with pytest.raises(InputError, match=r"^t contains label 2, outside the 2 classes"):
        net.gradient(numpy.ones((2, 4), numpy.float32), numpy.array([0, 2]))


def test_labels_out_of_range_read_nothing_on_the_device(gpu):
    """The kernel gives a NaN loss for a label past the classes instead of reading past the row."""
    x = gpu.asarray(numpy.zeros((2, 3), numpy.float32))
    for label in (3, -1, 1000):
        loss, _ = gpu.kernels.softmax_cross_entropy(x, gpu.asarray(numpy.array([0, label])))
        assert numpy.isnan(float(loss))


def test_the_trainer_reads_the_device_per_interval_not_per_step(gpu):
    """Twice the steps in the same number of logging intervals: not one transfer more."""
    from fastnet.training.trainer import Trainer

    def reads_of_a_run(samples, log_every):
        rng = numpy.random.default_rng(5)
        x = rng.standard_normal((samples, 12)).astype(numpy.float32)
        t = rng.integers(0, 5, samples)
        net = NETS["mlp-batchnorm"][0](gpu)
        trainer = Trainer(
            net, SGD(lr=0.1), x, t, epochs=1, batch_size=4, log_every=log_every, progress=False, eval_batch_size=1000
        )
        TRANSFERS.reads.clear()
        trainer.fit()
        assert len(trainer.history.data["step_loss"]) == 4
        return list(TRANSFERS.reads)

    short, long = reads_of_a_run(48, 3), reads_of_a_run(96, 6)  # 12 and 24 steps, 4 intervals each
    assert len(long) == len(short), "\n".join(long)
