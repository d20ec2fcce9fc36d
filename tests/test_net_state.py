"""A net owns its state (BatchNorm statistics, dropout random state) and its modes
(trusted inputs, a probe that leaves no trace); callers never flip flags and restore them."""

import re

import numpy
import pytest

from fastnet.errors import InputError
from fastnet.layers import Affine, BatchNormalization, Dropout, Relu
from fastnet.nets import DeepConvNet, MultiLayerNet, Sequential
from fastnet.optim import SGD
from fastnet.training.checkpoint import read_checkpoint, restore_checkpoint, save_checkpoint

F32 = numpy.float32


def bn_dropout_net(backend="numpy", seed=1):
    return MultiLayerNet(
        12, [10, 8], 4, use_batchnorm=True, use_dropout=True, dropout_ratio=0.3, backend=backend, seed=seed
    )


def batch(backend, n=6, features=12, classes=4, seed=0):
    rng = numpy.random.default_rng(seed)
    return (backend.asarray(rng.random((n, features), dtype=F32)), backend.asarray(rng.integers(0, classes, n)))


def host_grads(net, x, t):
    return {k: net.backend.to_numpy(v).copy() for k, v in net.gradient(x, t).items()}


def test_layer_state_holds_batchnorm_statistics_and_dropout_random_state():
    net = bn_dropout_net()
    state = net.layer_state()
    assert set(state) == {"BatchNorm1", "BatchNorm2", "Dropout1", "Dropout2"}
    assert set(state["BatchNorm1"]) == {"running_mean", "running_var"}
    assert set(state["Dropout1"]) == {"rng"}
    assert state["Dropout1"]["rng"]["bit_generator"] == "PCG64"


def test_loading_the_state_replays_the_same_training_step(backend):
    net = bn_dropout_net(backend)
    x, t = batch(net.backend)
    net.gradient(x, t)  # move the state away from the start
    saved = net.layer_state()
    first = host_grads(net, x, t)
    mean_after = net.backend.to_numpy(net.layers["BatchNorm1"].running_mean).copy()
    net.load_layer_state(saved)
    again = host_grads(net, x, t)
    for key in first:
        numpy.testing.assert_array_equal(again[key], first[key], err_msg=key)  # same dropout masks
    numpy.testing.assert_array_equal(net.backend.to_numpy(net.layers["BatchNorm1"].running_mean), mean_after)


def test_a_damaged_dropout_state_is_refused_and_changes_nothing():
    net = bn_dropout_net()
    before = net.layer_state()
    with pytest.raises(InputError, match="Dropout random state is damaged"):
        net.load_layer_state({"Dropout1": {"rng": {"bit_generator": "PCG64", "state": "garbage"}}})
    assert net.layer_state()["Dropout1"] == before["Dropout1"]
    with pytest.raises(InputError, match="no layer named Nope"):
        net.load_layer_state({"Nope": {}})


def test_moving_between_host_backends_keeps_the_dropout_sequence(backend):
    if backend.device != "cpu":
        pytest.skip("a device generator restarts from its seed when moved (it exposes no state)")
    stays, moves = bn_dropout_net("numpy"), bn_dropout_net("numpy")
    x, t = batch(stays.backend)
    stays.gradient(x, t)
    moves.gradient(x, t)
    moves.to(backend)
    expected = host_grads(stays, x, t)
    got = host_grads(moves, backend.asarray(backend.to_numpy(x)), backend.asarray(backend.to_numpy(t)))
    for key in expected:
        numpy.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-7, err_msg=key)


def test_checkpoint_carries_the_layer_state(tmp_path):
    net = bn_dropout_net()
    x, t = batch(net.backend)
    net.gradient(x, t)
    save_checkpoint(tmp_path / "c.npz", net, SGD(0.1), {"epoch": 0, "step": 1, "iteration": 1}, {}, {})
    expected = host_grads(net, x, t)
    fresh = bn_dropout_net()
    arrays, meta = read_checkpoint(tmp_path / "c.npz")
    restore_checkpoint(fresh, SGD(0.1), arrays, meta, tmp_path / "c.npz")
    got = host_grads(fresh, x, t)
    for key in expected:
        numpy.testing.assert_array_equal(got[key], expected[key], err_msg=key)


# --- modes ------------------------------------------------------------------------------------------
def test_probe_leaves_no_trace():
    net = bn_dropout_net()
    x, t = batch(net.backend)
    net.gradient(x, t)
    state, last_loss = net.layer_state(), net.last_loss
    with net.probe():
        assert not net.validate_inputs
        net.loss(x * 3, t, train_flg=True)
        assert net.layers["Dropout1"].mask is not None
    after = net.layer_state()
    assert after["Dropout1"] == state["Dropout1"]
    numpy.testing.assert_array_equal(after["BatchNorm1"]["running_var"], state["BatchNorm1"]["running_var"])
    assert net.last_loss is last_loss and net.validate_inputs
    assert net.layers["Dropout1"].mask is None and net.layers["Affine1"].x is None  # caches cleared


def test_trusted_inputs_skip_value_checks_and_always_switch_back():
    net = bn_dropout_net()
    x, _ = batch(net.backend)
    bad = x.copy()
    bad[0, 0] = numpy.nan
    with net.trusted_inputs():
        net.predict(bad)  # not read: the caller vouched for the data
        with net.trusted_inputs():
            pass
        assert not net.validate_inputs  # a nested mode does not end the outer one
    with pytest.raises(InputError, match="NaN"):
        net.predict(bad)
    with pytest.raises(RuntimeError):
        with net.trusted_inputs():
            raise RuntimeError("boom")
    assert net.validate_inputs


def test_check_inputs_reads_every_value_even_when_trusted():
    net = bn_dropout_net()
    x, t = batch(net.backend)
    bad = x.copy()
    bad[2, 3] = numpy.inf
    with net.trusted_inputs():
        with pytest.raises(InputError, match="x_train contains 1 NaN or inf"):
            net.check_inputs(bad, t, "x_train")
        with pytest.raises(InputError, match="t_train contains label .*outside the 4 classes"):
            net.check_inputs(x, t + 7, "x_train")
        assert net.check_inputs(x, t) is x


def test_input_scaled_by_1e30_is_named_not_blamed_on_the_learning_rate():
    from fastnet.nets import TwoLayerNet
    from fastnet.training import Trainer

    net = TwoLayerNet(12, 8, 4, backend="numpy", seed=0)
    x, t = batch(net.backend, n=50)
    with pytest.raises(InputError) as refused:
        Trainer(net, SGD(0.1), x * F32(1e30), t, epochs=1, progress=False, log=None)
    message = str(refused.value)
    assert re.search(r"x_train holds values up to [0-9.]+e\+29, too large to train in float32", message)
    assert "scale the input" in message
    assert "learning rate" not in message
    Trainer(net, SGD(0.1), x * F32(255), t, epochs=1, progress=False, log=None)  # raw pixels are fine


# --- backward after a test-mode forward --------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dropout", "batchnorm"])
def test_backward_after_a_test_mode_forward_is_refused(backend, kind):
    layer = (
        Dropout(0.5, backend=backend, seed=0)
        if kind == "dropout"
        else BatchNormalization(numpy.ones(3, F32), numpy.zeros(3, F32), backend=backend)
    )
    x = backend.asarray(numpy.random.default_rng(0).random((4, 3), dtype=F32))
    dout = backend.asarray(numpy.ones((4, 3), F32))
    layer.forward(x, train_flg=True)
    layer.backward(dout)  # fine after a training forward
    layer.forward(x, train_flg=False)
    with pytest.raises(InputError, match=r"backward after a test-mode forward \(train_flg=False\)"):
        layer.backward(dout)
    layer.forward(x, train_flg=True)
    layer.backward(dout)


def test_net_backward_after_predict_is_refused():
    net = bn_dropout_net()
    x, t = batch(net.backend)
    net.gradient(x, t)
    net.loss(x, t)  # test mode, as the book's loss is
    with pytest.raises(InputError, match="test-mode forward"):
        net.backward()


# --- a layer added to a net ------------------------------------------------------------------------
def test_float64_numpy_weights_join_a_float32_net_once(backend):
    rng = numpy.random.default_rng(0)
    W1, W2 = rng.standard_normal((6, 5)), rng.standard_normal((5, 3))
    first = Affine(W1, numpy.zeros(5), backend="numpy")
    net = Sequential(backend=backend, dtype="float32")
    net.add("Affine1", first, suffix="1")
    net.add("BatchNorm1", BatchNormalization(numpy.ones(5), numpy.zeros(5)), suffix="1")
    net.add("Relu1", Relu())
    net.add("Affine2", Affine(W2, numpy.zeros(3)), suffix="2")
    assert {str(v.dtype) for v in net.params.values()} == {"float32"}
    assert net.layers["BatchNorm1"].running_mean.dtype == F32
    assert first.backend is net.backend and backend.is_array(net.params["W1"])
    numpy.testing.assert_array_equal(backend.to_numpy(net.params["W1"]), W1.astype(F32))
    x = backend.asarray(rng.random((4, 6), dtype=F32))
    grads = net.gradient(x, backend.asarray(numpy.array([0, 1, 2, 0])))
    assert {str(g.dtype) for g in grads.values()} == {"float32"}


def test_deep_conv_net_with_dropout_passes_the_gradient_check():
    """The numerical side replays the dropout masks the backprop pass used."""
    from fastnet.gradcheck import check_net_gradients

    net = DeepConvNet((1, 8, 8), hidden_size=6, dropout_ratio=0.3, backend="numpy", dtype="float64", seed=0)
    rng = numpy.random.default_rng(0)
    x, t = rng.standard_normal((2, 1, 8, 8)), rng.integers(0, 10, 2)
    for key in net.params:
        if key.startswith("b"):
            net.params[key][...] = 0.1 * rng.standard_normal(net.params[key].shape)
    before = net.layer_state()
    report = check_net_gradients(net, x, t, max_entries=10)
    assert max(r.max_relative_error for r in report) < 1e-6
    assert net.layer_state()["Dropout1"] == before["Dropout1"]


def test_batchnorm_state_of_the_wrong_shape_is_refused():
    net = bn_dropout_net()
    with pytest.raises(InputError, match=r"BatchNormalization state running_mean has shape \(10,\); got \(3,\)"):
        net.load_layer_state({"BatchNorm1": {"running_mean": numpy.zeros(3, F32)}})
    with pytest.raises(InputError, match="BatchNormalization has no state named rng"):
        net.load_layer_state({"BatchNorm1": {"rng": {}}})


def test_state_dict_holds_parameters_buffers_and_random_state_by_name():
    net = bn_dropout_net()
    state = net.state_dict()
    assert set(net.params) < set(state)
    assert {"BatchNorm1.running_mean", "BatchNorm1.running_var", "Dropout1.rng", "Dropout2.rng"} < set(state)
    assert set(state) == set(net.params) | {f"{n}.{k}" for n, s in net.layer_state().items() for k in s}
    assert all(isinstance(state[k], numpy.ndarray) for k in net.state_arrays())  # host copies
    assert state["Dropout1.rng"]["bit_generator"] == "PCG64"


def test_load_state_dict_makes_a_fresh_net_compute_the_same_numbers(backend):
    trained = bn_dropout_net(backend)
    x, t = batch(trained.backend)
    for _ in range(2):
        trained.gradient(x, t)  # parameters untouched, statistics and streams moved on
    for value in trained.params.values():
        value += 0.01
    state = trained.state_dict()
    fresh = bn_dropout_net(backend, seed=99)
    fresh.load_state_dict(state)
    want, got = host_grads(trained, x, t), host_grads(fresh, x, t)
    for key in want:
        numpy.testing.assert_array_equal(got[key], want[key], err_msg=key)  # same weights, statistics, masks
    numpy.testing.assert_array_equal(trained.predict(x), fresh.predict(x))


def test_load_state_dict_refuses_a_wrong_shape_a_stranger_or_a_gap_and_changes_nothing():
    net = bn_dropout_net()
    before = net.state_dict()
    wrong = {**before, "W1": numpy.zeros((2, 2), F32)}
    with pytest.raises(InputError, match=r"state W1 has shape"):
        net.load_state_dict(wrong)
    with pytest.raises(InputError, match="no parameter or state named Nope.W"):
        net.load_state_dict({**before, "Nope.W": numpy.zeros(1)})
    with pytest.raises(InputError, match="the state lacks W1"):
        net.load_state_dict({k: v for k, v in before.items() if k != "W1"})
    damaged = {**before, "Dropout1.rng": {"bit_generator": "PCG64", "state": "garbage"}}
    with pytest.raises(InputError, match="Dropout random state is damaged"):
        net.load_state_dict(damaged)
    after = net.state_dict()
    assert after.keys() == before.keys()
    for key, value in before.items():
        assert numpy.array_equal(after[key], value) if isinstance(value, numpy.ndarray) else after[key] == value, key
    net.load_state_dict({"b1": numpy.ones_like(before["b1"])}, strict=False)  # a part, on request
    assert numpy.array_equal(net.params["b1"], numpy.ones_like(before["b1"]))
