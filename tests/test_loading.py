"""fastnet.load: the net of any fastnet file, rebuilt from the file's own metadata."""

import numpy
import pytest

import fastnet
from fastnet.errors import CheckpointError
from fastnet.nets import DeepConvNet, MultiLayerNet, SimpleConvNet, TwoLayerNet
from fastnet.serialization import load_arrays, save_arrays


def images(flat, n=20):
    x = numpy.random.default_rng(0).random((n, 1, 28, 28), dtype=numpy.float32)
    return x.reshape(n, -1) if flat else x


@pytest.mark.parametrize(
    "make, flat",
    [
        (
            lambda: MultiLayerNet(
                784,
                [30, 20],
                10,
                activation="sigmoid",
                use_batchnorm=True,
                use_dropout=True,
                dropout_ratio=0.3,
                backend="numpy",
                seed=1,
            ),
            True,
        ),
        (
            lambda: SimpleConvNet(
                conv_param={"filter_num": 8, "filter_size": 3, "pad": 1, "stride": 1},
                hidden_size=20,
                backend="numpy",
                seed=1,
            ),
            False,
        ),
    ],
)
def test_parameter_files_rebuild_their_net(tmp_path, make, flat):
    net = make()
    net.set_state_arrays({k: v + 0.1 for k, v in net.state_arrays().items() if ".running" in k})
    net.save_params(tmp_path / "p.npz")
    again = fastnet.load(tmp_path / "p.npz", backend="numpy")
    x = images(flat)
    assert numpy.array_equal(again.predict(x), net.predict(x))
    probabilities = again.predict_proba(x)
    assert numpy.allclose(probabilities.sum(axis=1), 1, atol=1e-6) and probabilities.dtype == numpy.float32


@pytest.mark.parametrize(
    "make, flat",
    [
        (lambda: TwoLayerNet(784, 40, 10, backend="numpy", seed=2), True),
        (lambda: SimpleConvNet(hidden_size=30, backend="numpy", seed=2), False),
        (lambda: DeepConvNet(hidden_size=20, backend="numpy", seed=2), False),
    ],
)
def test_files_without_a_layer_description_load_for_the_classic_nets(tmp_path, make, flat):
    net = make()
    net.save_params(tmp_path / "p.npz")
    arrays, meta = load_arrays(tmp_path / "p.npz")
    del meta["layers"]  # as fastnet wrote them before the description existed
    save_arrays(tmp_path / "old.npz", arrays, meta)
    again = fastnet.load(tmp_path / "old.npz", backend="numpy")
    assert type(again) is type(net)
    assert numpy.array_equal(again.predict(images(flat)), net.predict(images(flat)))


def test_a_damaged_description_is_one_line(tmp_path):
    net = TwoLayerNet(784, 10, 10, backend="numpy", seed=0)
    net.save_params(tmp_path / "p.npz")
    arrays, meta = load_arrays(tmp_path / "p.npz")
    meta["layers"][1]["kind"] = "Teleport"
    save_arrays(tmp_path / "bad.npz", arrays, meta)
    with pytest.raises(CheckpointError) as caught:
        fastnet.load(tmp_path / "bad.npz")
    assert "Teleport" in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(CheckpointError, match="no such file"):
        fastnet.load(tmp_path / "missing.npz")
