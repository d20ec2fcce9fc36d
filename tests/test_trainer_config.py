"""The Trainer's settings: one TrainerConfig (or its fields as keywords), checked at the door."""

import numpy
import pytest

from fastnet.datasets import load_dataset
from fastnet.errors import InputError
from fastnet.nets import TwoLayerNet
from fastnet.optim import SGD
from fastnet.training import RunConfig, Trainer, TrainerConfig, build_net


@pytest.fixture(scope="module")
def sample():
    return load_dataset("sample")


def net():
    return TwoLayerNet(784, 20, 10, backend="numpy", seed=0)


@pytest.mark.parametrize(
    "options, named",
    [
        ({"epochs": 1.7}, "epochs"),
        ({"epochs": 0}, "epochs"),
        ({"batch_size": 2.5}, "batch_size"),
        ({"eval_batch_size": -1}, "eval_batch_size"),
        ({"seed": -1}, "seed"),
        ({"log_every": True}, "log_every"),
        ({"epoch": 3}, "unknown option"),
    ],
)
def test_bad_settings_are_refused_naming_them(sample, options, named):
    with pytest.raises(InputError, match=named):
        Trainer(net(), SGD(0.1), sample.x_train[:200], sample.t_train[:200], **options)


def test_empty_training_or_test_data_is_refused(sample):
    empty_x, empty_t = sample.x_train[:0], sample.t_train[:0]
    with pytest.raises(InputError, match="x_train holds no samples"):
        Trainer(net(), SGD(0.1), empty_x, empty_t)
    with pytest.raises(InputError, match="x_test holds no samples"):
        Trainer(net(), SGD(0.1), sample.x_train[:200], sample.t_train[:200], empty_x, empty_t)


def test_a_config_object_and_keywords_train_the_same_weights(sample):
    run = RunConfig.for_net("two-layer", hidden=[20], epochs=2, limit=300)
    settings = TrainerConfig.for_run(run, progress=False, log=None)
    assert (settings.epochs, settings.batch_size, settings.seed) == (2, 100, 0)
    assert settings.record["net"] == "two-layer"
    x, t = sample.x_train[:300], sample.t_train[:300]
    a = build_net(run, "numpy", (784,))
    Trainer(a, SGD(0.1), x, t, settings=settings).fit()
    b = build_net(run, "numpy", (784,))
    Trainer(b, SGD(0.1), x, t, epochs=2, batch_size=100, seed=0, progress=False, log=None).fit()
    for key in a.params:
        assert numpy.array_equal(a.params[key], b.params[key]), key


def test_recipes_come_from_the_catalog():
    from fastnet import catalog

    assert RunConfig() == RunConfig.for_net(catalog.DEFAULT_NET)
    conv = RunConfig.for_net("simple-conv")
    assert (conv.optimizer, conv.lr, conv.epochs, conv.hidden, conv.batch_size) == ("adam", 0.001, 20, [100], 100)
    assert RunConfig.for_net("mlp", lr=0.5).lr == 0.5
    assert not conv.flatten and RunConfig().flatten
    with pytest.raises(InputError, match="unknown optimizer"):
        RunConfig.for_net("mlp", optimizer="lbfgs")


def test_a_run_config_refuses_unknown_keys_and_a_checkpoint_record_reads():
    from fastnet.training.config import RECORD_KEYS, RunConfig

    with pytest.raises(InputError, match="unknown run setting.*lerning_rate"):
        RunConfig.from_dict({**RunConfig().to_dict(), "lerning_rate": 0.1})
    recorded = {**RunConfig().to_dict(), **{key: "x" for key in RECORD_KEYS}}
    assert RunConfig.from_record(recorded) == RunConfig()
    with pytest.raises(InputError, match="unknown run setting.*stray"):
        RunConfig.from_record({**recorded, "stray": 1})
