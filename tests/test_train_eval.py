"""The training set's evaluation after each epoch: the whole set (the book's choice, the Python
default) or a fixed sample of it (fastnet train's default), the same sample every epoch."""

import numpy
import pytest

from fastnet.datasets import load_dataset
from fastnet.errors import InputError
from fastnet.evaluation import evaluate
from fastnet.nets import TwoLayerNet
from fastnet.optim import SGD
from fastnet.training import Trainer
from fastnet.training.placing import train_eval_sample


@pytest.fixture(scope="module")
def data():
    d = load_dataset("sample")
    return d.x_train[:2000], d.t_train[:2000]


def train(x, t, **options):
    net = TwoLayerNet(784, 20, 10, backend="numpy", seed=0)
    trainer = Trainer(net, SGD(lr=0.1), x, t, epochs=2, batch_size=100, progress=False, log=None, **options)
    trainer.fit()
    return net, trainer


def test_by_default_the_whole_training_set_is_evaluated(data):
    net, trainer = train(*data)
    loss, acc = evaluate(net, trainer.x_train, trainer.t_train)
    assert trainer.x_train_eval is trainer.x_train
    assert trainer.observation["train_acc"] == acc and trainer.observation["train_loss"] == loss


def test_a_sample_is_evaluated_the_same_every_epoch_and_the_numbers_are_its_own(data):
    net, trainer = train(*data, train_eval=300)
    assert trainer.x_train_eval.shape[0] == 300
    again = train_eval_sample(net, trainer.x_train, trainer.t_train, 300, seed=trainer.seed)
    assert numpy.array_equal(again[0], trainer.x_train_eval) and numpy.array_equal(again[1], trainer.t_train_eval)
    loss, acc = evaluate(net, trainer.x_train_eval, trainer.t_train_eval)
    assert trainer.observation["train_acc"] == acc and trainer.observation["train_loss"] == loss
    full_loss, full_acc = evaluate(net, trainer.x_train, trainer.t_train)
    assert (full_loss, full_acc) != (loss, acc)  # a sample of 300 is not the 2000


def test_the_sample_depends_on_the_seed_and_holds_distinct_rows(data):
    net = TwoLayerNet(784, 20, 10, backend="numpy", seed=0)
    x = numpy.arange(50, dtype=numpy.float32)[:, None] * numpy.ones((1, 784), numpy.float32)
    t = numpy.arange(50) % 10
    a, _ = train_eval_sample(net, x, t, 20, seed=1)
    b, _ = train_eval_sample(net, x, t, 20, seed=2)
    assert len(set(a[:, 0].tolist())) == 20
    assert a[:, 0].tolist() != b[:, 0].tolist()
    whole, _ = train_eval_sample(net, x, t, 500, seed=1)
    assert whole is x


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "all", None])
def test_a_bad_sample_size_is_named(data, bad):
    with pytest.raises(InputError, match="train-eval must be a count of images"):
        train(*data, train_eval=bad)
