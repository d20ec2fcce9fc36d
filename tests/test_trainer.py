"""The training loop: it learns, records honest numbers, samples without replacement, and
logs the loss of the gradient pass itself."""

import json

import numpy
import pytest

from fastnet.datasets import load_dataset
from fastnet.nets import TwoLayerNet
from fastnet.optim import SGD
from fastnet.training import Trainer, evaluate
from fastnet.training.checkpoint import read_checkpoint

TIMING = ("epoch_seconds", "samples_per_second")


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample")


def make_trainer(sample, tmp_path=None, seed=0, epochs=3, limit=None, **options):
    net = TwoLayerNet(784, 50, 10, backend="numpy", seed=seed)
    x, t = sample.x_train[:limit], sample.t_train[:limit]
    return Trainer(
        net,
        SGD(lr=0.1),
        x,
        t,
        sample.x_test,
        sample.t_test,
        epochs=epochs,
        batch_size=100,
        seed=seed,
        out_dir=tmp_path,
        progress=False,
        log=None,
        **options,
    )


def test_short_training_learns_and_writes_its_outputs(sample, tmp_path):
    trainer = make_trainer(sample, tmp_path, epochs=3)
    history = trainer.fit().to_dict()

    assert history["epoch"] == [1, 2, 3]
    assert history["test_acc"][-1] > 0.85
    assert history["train_loss"][0] > history["train_loss"][-1]
    # The per-epoch numbers are those of the whole sets, not of a few batches.
    net = trainer.net
    x_test, t_test = sample.x_test, sample.t_test
    assert history["test_acc"][-1] == net.accuracy(x_test, t_test)
    assert history["train_acc"][-1] == net.accuracy(sample.x_train, sample.t_train)
    assert history["test_loss"][-1] == pytest.approx(evaluate(net, x_test, t_test, batch_size=2000)[0], rel=1e-5)

    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["backend"] == "numpy"
    for column in ("train_loss", "train_acc", "test_loss", "test_acc"):
        assert saved["history"][column] == history[column]

    png = (tmp_path / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    arrays, meta = read_checkpoint(tmp_path / "checkpoint.npz")
    assert meta["progress"]["epoch"] == 3 and meta["backend"] == "numpy"
    for key, value in net.params.items():
        assert numpy.array_equal(arrays[key], value)


def test_every_sample_is_used_exactly_once_per_epoch(sample):
    n = 1050  # not a multiple of the batch size: the last batch is short, nothing is dropped
    x = sample.x_train[:n].copy()
    x[:, 0] = numpy.arange(n, dtype=numpy.float32)  # the row's own index rides along in pixel 0
    net = TwoLayerNet(784, 10, 10, backend="numpy", seed=0)
    trainer = Trainer(net, SGD(lr=1e-4), x, sample.t_train[:n], epochs=3, batch_size=100, progress=False, log=None)
    seen = []
    gradient = net.gradient

    def recording_gradient(xb, tb):
        seen.append(xb[:, 0].astype(numpy.int64))
        return gradient(xb, tb)

    net.gradient = recording_gradient
    trainer.fit()

    assert len(seen) == 3 * 11
    epochs = [numpy.concatenate(seen[i * 11 : (i + 1) * 11]) for i in range(3)]
    for order in epochs:
        assert numpy.array_equal(numpy.sort(order), numpy.arange(n))
    assert not numpy.array_equal(epochs[0], epochs[1])  # a fresh permutation every epoch


def test_logged_loss_comes_from_the_gradient_pass(sample):
    trainer = make_trainer(sample, epochs=1, limit=1000, log_every=4)
    net = trainer.net
    forwards = {True: 0, False: 0}
    losses = []
    forward, gradient = net._forward, net.gradient

    def counting_forward(x, train_flg):
        forwards[bool(train_flg)] += 1
        return forward(x, train_flg)

    def recording_gradient(x, t):
        grads = gradient(x, t)
        losses.append(float(net.last_loss))
        return grads

    net._forward, net.gradient = counting_forward, recording_gradient
    history = trainer.fit().to_dict()

    steps = trainer.steps_per_epoch
    assert len(losses) == steps == 10
    assert forwards[True] == steps  # one training forward per step, none extra for logging
    assert forwards[False] == 1 + 2  # evaluation only: 1000 train and 2000 test in batches of 1000
    logged = [loss for _, loss in history["step_loss"]]
    expected = [
        numpy.float32(sum(numpy.float32(v) for v in losses[i : i + 4])) / len(losses[i : i + 4])
        for i in range(0, steps, 4)
    ]
    assert [i for i, _ in history["step_loss"]] == [4, 8, 10]
    assert logged == pytest.approx(expected, rel=1e-6)


def test_same_seed_same_numbers(sample):
    def run(seed):
        trainer = make_trainer(sample, seed=seed, epochs=2, limit=2000)
        history = trainer.fit().to_dict()
        numbers = {k: v for k, v in history.items() if k not in TIMING}
        return numbers, {k: v.copy() for k, v in trainer.net.params.items()}

    first, weights = run(seed=7)
    second, weights_again = run(seed=7)
    other, _ = run(seed=8)
    assert first == second
    assert all(numpy.array_equal(weights[k], weights_again[k]) for k in weights)
    assert first["train_loss"] != other["train_loss"]
