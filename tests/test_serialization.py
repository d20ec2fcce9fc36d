"""Saving and loading nets: exact round trips, and a clear refusal of anything else."""

import json
import pathlib
import pickle

import numpy
import pytest

from fastnet.backends import get_backend
from fastnet.errors import CheckpointError
from fastnet.nets import MultiLayerNet, SimpleConvNet, TwoLayerNet
from fastnet.serialization import HEADER_KEY, load_arrays, save_arrays


def trained_bn_net(backend, seed=0):
    """A net whose BatchNorm running statistics have moved away from their initial 0 and 1."""
    net = MultiLayerNet(10, [6, 5], 3, use_batchnorm=True, use_dropout=True, backend=backend, seed=seed)
    rng = numpy.random.default_rng(seed + 100)
    for _ in range(3):
        x = backend.asarray(rng.random((8, 10), dtype=numpy.float32))
        t = backend.asarray(rng.integers(0, 3, 8))
        grads = net.gradient(x, t)
        for key in grads:
            net.params[key] -= 0.1 * grads[key]
    return net


def host_state(net):
    return {k: net.backend.to_numpy(v).copy() for k, v in net.state_arrays().items()}


def assert_same_state(actual, expected):
    assert set(actual) == set(expected)
    for key in expected:
        assert actual[key].dtype == expected[key].dtype, key
        numpy.testing.assert_array_equal(actual[key], expected[key], err_msg=key)


def test_save_load_round_trip_is_bitwise(backend, tmp_path):
    net = trained_bn_net(backend)
    saved = host_state(net)
    assert any(k.endswith("running_mean") for k in saved)
    assert not numpy.all(saved["BatchNorm1.running_var"] == 1)
    net.save_params(tmp_path / "net.npz")

    fresh = MultiLayerNet(10, [6, 5], 3, use_batchnorm=True, use_dropout=True, backend=backend, seed=99)
    fresh.load_params(tmp_path / "net.npz")
    assert_same_state(host_state(fresh), saved)
    x = backend.asarray(numpy.random.default_rng(5).random((4, 10), dtype=numpy.float32))
    numpy.testing.assert_array_equal(backend.to_numpy(fresh.predict(x)), backend.to_numpy(net.predict(x)))


def test_float64_net_round_trips_bitwise(backend, tmp_path):
    net = TwoLayerNet(5, 4, 3, weight_init_std=1.0, backend=backend, dtype="float64", seed=1)
    net.save_params(tmp_path / "net.npz")
    fresh = TwoLayerNet(5, 4, 3, backend=backend, dtype="float64", seed=2)
    fresh.load_params(tmp_path / "net.npz")
    assert_same_state(host_state(fresh), host_state(net))


def test_load_keeps_the_arrays_the_layers_use(backend, tmp_path):
    net = trained_bn_net(backend)
    net.save_params(tmp_path / "net.npz")
    fresh = MultiLayerNet(10, [6, 5], 3, use_batchnorm=True, use_dropout=True, backend=backend, seed=7)
    before = {k: id(v) for k, v in fresh.state_arrays().items()}
    fresh.load_params(tmp_path / "net.npz")
    assert {k: id(v) for k, v in fresh.state_arrays().items()} == before
    assert fresh.params["W1"] is fresh.layers["Affine1"].W


def test_load_into_a_different_shape_is_refused_naming_it(tmp_path):
    TwoLayerNet(5, 4, 3, seed=0).save_params(tmp_path / "net.npz")
    with pytest.raises(CheckpointError, match=r"W1 has shape \(5, 4\).*\(5, 6\)"):
        TwoLayerNet(5, 6, 3, seed=0).load_params(tmp_path / "net.npz")


def test_load_into_a_different_net_is_refused_naming_it(tmp_path):
    TwoLayerNet(5, 4, 3, seed=0).save_params(tmp_path / "net.npz")
    other = MultiLayerNet(5, [4], 3, use_batchnorm=True, seed=0)
    with pytest.raises(CheckpointError, match="missing.*gamma1"):
        other.load_params(tmp_path / "net.npz")
    conv = SimpleConvNet(
        input_dim=(1, 6, 6), conv_param={"filter_num": 2, "filter_size": 3}, hidden_size=4, output_size=3, seed=0
    )
    with pytest.raises(CheckpointError, match="W3"):
        conv.load_params(tmp_path / "net.npz")


def test_a_refused_load_leaves_the_net_unchanged(tmp_path):
    TwoLayerNet(5, 4, 3, seed=0).save_params(tmp_path / "net.npz")
    net = TwoLayerNet(5, 6, 3, seed=1)
    before = host_state(net)
    with pytest.raises(CheckpointError):
        net.load_params(tmp_path / "net.npz")
    assert_same_state(host_state(net), before)


@pytest.fixture
def saved_file(tmp_path):
    net = MultiLayerNet(6, [4], 3, use_batchnorm=True, seed=0)
    path = net.save_params(tmp_path / "net.npz")
    return path, host_state(net)


def test_truncated_files_are_refused(saved_file, tmp_path):
    path, _ = saved_file
    data = path.read_bytes()
    for length in range(0, len(data), 37):
        cut = tmp_path / f"cut{length}.npz"
        cut.write_bytes(data[:length])
        with pytest.raises(CheckpointError):
            load_arrays(cut)


def test_a_flipped_byte_is_refused_or_harmless(saved_file, tmp_path):
    """Flip bytes all over the file: the load fails with CheckpointError or yields the very same state."""
    path, expected = saved_file
    data = path.read_bytes()
    net = MultiLayerNet(6, [4], 3, use_batchnorm=True, seed=0)  # a refused load leaves it as it was
    offsets = range(0, len(data), 3)
    refused = 0
    for offset in offsets:
        damaged = bytearray(data)
        damaged[offset] ^= 0xFF
        target = tmp_path / f"damaged{offset}.npz"  # a new file each time: rewriting one is slow
        target.write_bytes(bytes(damaged))
        try:
            net.load_params(target)
        except CheckpointError:
            refused += 1
            continue
        assert_same_state(host_state(net), expected)
    assert refused > len(offsets) // 2  # every data byte is covered by a checksum


def test_foreign_npz_is_refused(tmp_path):
    numpy.savez(tmp_path / "foreign.npz", W1=numpy.zeros((5, 4)), b1=numpy.zeros(4))
    with pytest.raises(CheckpointError, match="not a fastnet file"):
        TwoLayerNet(5, 4, 3).load_params(tmp_path / "foreign.npz")


@pytest.mark.parametrize(
    "header",
    [
        json.dumps({"format": "other"}),
        json.dumps([1, 2]),
        json.dumps({"format": "fastnet-arrays", "version": "1"}),
        "{not json",
    ],
)
def test_unknown_header_is_refused(tmp_path, header):
    numpy.savez(tmp_path / "odd.npz", **{HEADER_KEY: numpy.array(header), "W1": numpy.zeros(2)})
    with pytest.raises(CheckpointError):
        load_arrays(tmp_path / "odd.npz")


def test_newer_format_is_refused(tmp_path):
    header = json.dumps({"format": "fastnet-arrays", "version": 99, "meta": {}})
    numpy.savez(tmp_path / "new.npz", **{HEADER_KEY: numpy.array(header)})
    with pytest.raises(CheckpointError, match="newer"):
        load_arrays(tmp_path / "new.npz")


@pytest.mark.parametrize("content", [b"W1 0.1 0.2\nb1 0.3\n", b"", b"\x00" * 100, b"PK\x03\x04garbage"])
def test_non_npz_files_are_refused(tmp_path, content):
    (tmp_path / "bad.npz").write_bytes(content)
    with pytest.raises(CheckpointError):
        TwoLayerNet(5, 4, 3).load_params(tmp_path / "bad.npz")


def test_missing_file_and_directory_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_arrays(tmp_path / "absent.npz")
    with pytest.raises(CheckpointError, match="directory"):
        load_arrays(tmp_path)


class _Trap:
    """Unpickling this would create a file: proof that loading ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def test_pickled_content_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code_ran"
    header = json.dumps({"format": "fastnet-arrays", "version": 1, "meta": {}})
    trap = numpy.empty(1, dtype=object)
    trap[0] = _Trap(marker)
    numpy.savez(tmp_path / "npz_pickle.npz", **{HEADER_KEY: numpy.array(header), "W1": trap})
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps(_Trap(marker)))
    numpy.save(tmp_path / "object.npy", trap, allow_pickle=True)
    for name in ("npz_pickle.npz", "plain.pkl", "object.npy"):
        with pytest.raises(CheckpointError):
            load_arrays(tmp_path / name)
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_arrays(tmp_path / "npz_pickle.npz")
    assert not marker.exists()


def test_non_finite_or_integer_arrays_are_refused(tmp_path):
    net = TwoLayerNet(5, 4, 3, seed=0)
    arrays = {k: v.copy() for k, v in host_state(net).items()}
    arrays["W2"][0, 0] = numpy.nan
    save_arrays(tmp_path / "nan.npz", arrays)
    with pytest.raises(CheckpointError, match="W2"):
        net.load_params(tmp_path / "nan.npz")
    arrays = host_state(net)
    arrays["b1"] = arrays["b1"].astype(numpy.int32)
    save_arrays(tmp_path / "int.npz", arrays)
    with pytest.raises(CheckpointError, match="b1"):
        net.load_params(tmp_path / "int.npz")


def test_moving_to_another_backend_and_back_keeps_all_state(backend):
    net = trained_bn_net(get_backend("numpy"))
    before = host_state(net)
    x = numpy.random.default_rng(3).random((4, 10), dtype=numpy.float32)
    expected = net.predict(x)

    net.to(backend)
    assert net.backend is backend
    for layer in net.layers.values():
        assert layer.backend is backend
    for key, value in net.state_arrays().items():
        assert backend.is_array(value), key
    assert net.params["W1"] is net.layers["Affine1"].W
    assert_same_state(host_state(net), before)
    numpy.testing.assert_array_equal(backend.to_numpy(net.predict(backend.asarray(x))), expected)

    net.to("numpy")
    assert_same_state(host_state(net), before)
    numpy.testing.assert_array_equal(net.predict(x), expected)
