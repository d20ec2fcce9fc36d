"""What each rank runs in the distributed tests: ``mpiexec -n N python distributed_worker.py MODE OUT``.

``parity``: every configuration of ``CONFIGS`` trained through the public API
(``grads = dp.gradient(x, t); optimizer.update(net.params, grads)``); each rank saves its final
parameters, per-step losses and evaluation to OUT/rank<R>.npz.  ``train_single`` is the same
loop in one process with plain ``net.gradient``: the tests' oracle.
The other modes make one rank fail in a given way.
"""

import os
import signal
import sys
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # fastnet from this worktree

from fastnet.nets import MultiLayerNet, TwoLayerNet  # noqa: E402
from fastnet.optim import make_optimizer  # noqa: E402
from fastnet.training.trainer import epoch_seed, evaluate  # noqa: E402

SAMPLES, FEATURES, CLASSES, STEPS = 1000, 12, 5, 30
NETS = ("two-layer", "mlp", "mlp-bn")
CONFIGS = [(net, opt, batch) for net in NETS for opt in ("sgd", "momentum", "adam") for batch in (200, 201)]
CONFIGS += [("two-layer", "adam", 2), ("mlp", "momentum", 2)]  # 3 ranks: one slice is empty
# Batch norm, one gradient at every small batch size: 1-row slices (2 on 2 ranks), an empty one
# (2 on 3 ranks), uneven ones.  One gradient, not a run: at batches below about 6 this recipe's
# one-process training amplifies a one-ulp nudge of a weight to O(1) within an epoch, so runs
# that round differently (any two partitions of a sum) part ways however exact each step is.
BN_BATCHES = (2, 3, 4, 5, 6, 7)
LR = {"sgd": 0.1, "momentum": 0.05, "adam": 0.01}


def dataset(backend="numpy"):
    rng = numpy.random.default_rng(1)
    x = rng.normal(size=(SAMPLES, FEATURES))
    t = (x[:, :CLASSES] + 0.5 * rng.normal(size=(SAMPLES, CLASSES))).argmax(axis=1)
    return x, t


def build(name, backend="numpy"):
    if name == "two-layer":
        return TwoLayerNet(FEATURES, 16, CLASSES, weight_init_std=0.3, backend=backend, dtype="float64", seed=0)
    return MultiLayerNet(
        FEATURES,
        [16, 12],
        CLASSES,
        weight_decay_lambda=0.01,
        use_batchnorm=name == "mlp-bn",
        backend=backend,
        dtype="float64",
        seed=0,
    )


def batches(batch, seed=0):
    """The trainer's order: a fresh permutation per epoch from (seed, epoch), STEPS steps."""
    step = 0
    for epoch in range(STEPS):
        perm = numpy.random.default_rng(epoch_seed(seed, epoch)).permutation(SAMPLES)
        for start in range(0, SAMPLES, batch):
            if step == STEPS:
                return
            yield perm[start : start + batch]
            step += 1


def train(config, gradient_of, net, x, t):
    _name, opt_name, batch = config
    optimizer = make_optimizer(opt_name, LR[opt_name])
    losses = []
    for idx in batches(batch):
        grads = gradient_of(x[idx], t[idx])
        optimizer.update(net.params, grads)
        losses.append(float(net.last_loss))
    return losses


def train_single(config):
    """The oracle: one process, the book's loop."""
    x, t = dataset()
    net = build(config[0])
    losses = train(config, net.gradient, net, x, t)
    return net, losses, evaluate(net, x, t, batch_size=300)


def key(config):
    return "/".join(map(str, config))


def parity(out):
    from threadpoolctl import threadpool_info

    from fastnet.distributed import DataParallel
    from fastnet.distributed.faults import abort_on_error, join_job
    from fastnet.distributed.threads import limit_threads

    comm = join_job("mpi")
    with abort_on_error(comm):
        threads = limit_threads(comm)
        x, t = dataset()
        arrays = {
            "threads": numpy.array(
                [threads] + [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
            )
        }
        for config in CONFIGS:
            net = build(config[0])
            if comm.rank > 0:  # proof that rank 0's parameters are broadcast
                for value in net.params.values():
                    value += 1.0
            dp = DataParallel(net, comm, seed=0)
            step = (
                dp.gradient
                if config[0] != "two-layer"
                else (lambda xb, tb, dp=dp: dp.slice_gradient(xb[dp.rows(len(xb))], tb[dp.rows(len(xb))], len(xb)))
            )
            arrays[key(config) + "/losses"] = numpy.array(train(config, step, net, x, t))
            arrays[key(config) + "/eval"] = numpy.array(dp.evaluate(x, t, batch_size=300))
            for name, value in net.state_arrays().items():
                arrays[key(config) + "/" + name] = value
        for batch in BN_BATCHES:
            net, oracle = build("mlp-bn"), build("mlp-bn")
            grads = DataParallel(net, comm).gradient(x[:batch], t[:batch])
            expected = oracle.gradient(x[:batch], t[:batch])
            for name in grads:
                arrays[f"bn{batch}/{name}"] = grads[name]
                arrays[f"bn{batch}/{name}/expected"] = expected[name]
            arrays[f"bn{batch}/running_var"] = net.layers["BatchNorm1"].running_var
            arrays[f"bn{batch}/running_var/expected"] = oracle.layers["BatchNorm1"].running_var
        dropout = MultiLayerNet(FEATURES, [8], CLASSES, use_dropout=True, seed=3)
        layer_seed = dropout.layers["Dropout1"].seed
        DataParallel(dropout, comm, seed=0)
        arrays["dropout"] = numpy.array([layer_seed, dropout.layers["Dropout1"].seed], dtype=numpy.uint64)
        arrays["dropout_resume"] = dropout_resume(comm, x, t)
        numpy.savez(Path(out) / f"rank{comm.rank}.npz", **arrays)


def dropout_resume(comm, x, t):
    """Parameters after 6 dropout steps, and after 3 + resuming (states gathered, restored) + 3."""
    from fastnet.distributed import DataParallel
    from fastnet.optim import SGD

    def run(dp, steps):
        for idx in list(batches(50))[steps]:
            SGD(0.1).update(dp.net.params, dp.gradient(x[idx], t[idx]))

    def build_dp():
        return DataParallel(
            MultiLayerNet(FEATURES, [8], CLASSES, use_dropout=True, dtype="float64", seed=3), comm, seed=0
        )

    straight = build_dp()
    run(straight, slice(0, 6))
    first = build_dp()
    run(first, slice(0, 3))
    params, states = {k: v.copy() for k, v in first.net.params.items()}, first.rng_states()
    resumed = build_dp()
    resumed.net.set_state_arrays(params)
    assert resumed.restore_rng_states(states)
    run(resumed, slice(3, 6))
    return numpy.array([straight.net.params["W1"], resumed.net.params["W1"]])


def raise_on_rank_1(out):
    from fastnet.distributed import DataParallel
    from fastnet.distributed.faults import abort_on_error, join_job

    comm = join_job("mpi")
    with abort_on_error(comm):
        x, t = dataset()
        net = build("two-layer")
        dp = DataParallel(net, comm)
        for step, idx in enumerate(batches(100)):
            if comm.rank == 1 and step == 3:
                raise RuntimeError("a bug on rank 1")
            dp.gradient(x[idx], t[idx])


def raise_outside_any_guard(out):
    """As ``raise``, with the excepthook instead of ``abort_on_error``."""
    from fastnet.distributed.faults import install_excepthook, join_job

    comm = join_job("mpi")
    install_excepthook(comm)
    if comm.rank == 1:
        raise ValueError("an uncaught error on rank 1")
    comm.barrier()


def killed_on_rank_1(out):
    from fastnet.distributed import DataParallel
    from fastnet.distributed.faults import abort_on_error, join_job

    comm = join_job("mpi")
    with abort_on_error(comm):
        x, t = dataset()
        dp = DataParallel(build("two-layer"), comm)
        for step in range(10**6):
            if comm.rank == 1 and step == 3:
                os.kill(os.getpid(), signal.SIGKILL)
            dp.gradient(x[:100], t[:100])


def start(out):
    """Join the job, then load the backend named by FASTNET_TEST_BACKEND on every rank."""
    from fastnet.backends import get_backend
    from fastnet.distributed.faults import RankFailure, abort_on_error, join_job, on_every_rank

    comm = join_job("mpi")
    try:
        with abort_on_error(comm):
            backend = on_every_rank(comm, lambda: get_backend(os.environ.get("FASTNET_TEST_BACKEND", "numpy")))
    except RankFailure as exc:
        if comm.is_root:
            print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"rank {comm.rank} started on {backend.name}")
    return 0


def numba_compile(out):
    """Compile fastnet's numba kernels (into NUMBA_CACHE_DIR) and report the cache hits."""
    from fastnet.backends import numba_kernels
    from fastnet.distributed.faults import abort_on_error, join_job

    comm = join_job("mpi")
    with abort_on_error(comm):
        x, t = dataset()
        net = build("two-layer", backend="numba")
        grads = net.gradient(x[:100], t[:100])
        kernels = [f for f in vars(numba_kernels).values() if hasattr(f, "stats")]
        hits = sum(sum(f.stats.cache_hits.values()) for f in kernels)
        misses = sum(sum(f.stats.cache_misses.values()) for f in kernels)
        numpy.savez(Path(out) / f"rank{comm.rank}.npz", hits=hits, misses=misses, **grads)


MODES = {
    "parity": parity,
    "raise": raise_on_rank_1,
    "excepthook": raise_outside_any_guard,
    "kill": killed_on_rank_1,
    "start": start,
    "numba": numba_compile,
}

if __name__ == "__main__":
    sys.exit(MODES[sys.argv[1]](sys.argv[2]))
