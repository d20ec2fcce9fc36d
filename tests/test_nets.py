"""Whole nets: backpropagation agrees with the numerical gradient of the loss (float64)."""

import numpy
import pytest

from fastnet.layers import Dropout
from fastnet.nets import DeepConvNet, MultiLayerNet, SimpleConvNet, TwoLayerNet

F64 = "float64"


def data(backend, shape, classes, seed=0):
    rng = numpy.random.default_rng(seed)
    x = backend.asarray(rng.random(shape))
    t = backend.asarray(rng.integers(0, classes, shape[0]))
    return x, t


def assert_gradients_match(net, x, t, mean_tol=1e-7, rel_tol=None):
    backend = net.backend
    backprop = {k: backend.to_numpy(v).copy() for k, v in net.gradient(x, t).items()}
    numeric = {k: backend.to_numpy(v) for k, v in net.numerical_gradient(x, t).items()}
    assert set(backprop) == set(numeric) == set(net.params)
    for key in backprop:
        diff = numpy.abs(backprop[key] - numeric[key])
        assert diff.mean() < mean_tol, f"{key}: mean |backprop - numeric| = {diff.mean():.2e}"
        if rel_tol is not None:
            # A floor: a bias right before batch norm has a gradient of exactly zero.
            scale = max(numpy.abs(backprop[key]).max() + numpy.abs(numeric[key]).max(), 1e-4)
            assert diff.max() / scale < rel_tol, f"{key}: relative error {diff.max() / scale:.2e}"


def test_two_layer_net_gradient_check(backend):
    net = TwoLayerNet(784, 10, 10, backend=backend, dtype=F64, seed=1)
    x, t = data(backend, (3, 784), 10)
    assert_gradients_match(net, x, t, rel_tol=1e-6)


@pytest.mark.parametrize("activation, init", [("sigmoid", "xavier"), ("relu", "he")])
def test_multi_layer_net_with_batchnorm_and_weight_decay(backend, activation, init):
    net = MultiLayerNet(
        12,
        [8, 7],
        4,
        activation=activation,
        weight_init_std=init,
        weight_decay_lambda=0.1,
        use_batchnorm=True,
        backend=backend,
        dtype=F64,
        seed=2,
    )
    assert set(net.params) == {"W1", "b1", "W2", "b2", "W3", "b3", "gamma1", "beta1", "gamma2", "beta2"}
    x, t = data(backend, (6, 12), 4)
    assert_gradients_match(net, x, t, rel_tol=1e-6)
    # The numerical gradient left the running statistics as the backprop pass had set them.
    mean_before = backend.to_numpy(net.layers["BatchNorm1"].running_mean).copy()
    net.numerical_gradient(x, t)
    numpy.testing.assert_array_equal(backend.to_numpy(net.layers["BatchNorm1"].running_mean), mean_before)


def test_weight_decay_adds_to_loss_and_gradient(backend):
    plain = MultiLayerNet(5, [4], 3, backend=backend, dtype=F64, seed=3)
    decayed = MultiLayerNet(5, [4], 3, weight_decay_lambda=0.5, backend=backend, dtype=F64, seed=3)
    x, t = data(backend, (4, 5), 3)
    penalty = 0.25 * sum(float((decayed.params[k] ** 2).sum()) for k in ("W1", "W2"))
    assert float(decayed.loss(x, t)) == pytest.approx(float(plain.loss(x, t)) + penalty, rel=1e-12)
    g_plain, g_decayed = plain.gradient(x, t), decayed.gradient(x, t)
    for key in ("W1", "W2"):
        expected = backend.to_numpy(g_plain[key]) + 0.5 * backend.to_numpy(decayed.params[key])
        numpy.testing.assert_allclose(backend.to_numpy(g_decayed[key]), expected, rtol=1e-12)
    numpy.testing.assert_array_equal(backend.to_numpy(g_decayed["b1"]), backend.to_numpy(g_plain["b1"]))


def test_simple_conv_net_gradient_check(backend):
    net = SimpleConvNet(
        input_dim=(2, 6, 6),
        conv_param={"filter_num": 3, "filter_size": 3, "pad": 1},
        hidden_size=5,
        output_size=4,
        weight_init_std=0.3,
        backend=backend,
        dtype=F64,
        seed=4,
    )
    assert set(net.params) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    assert net.params["W1"].shape == (3, 2, 3, 3) and net.params["W2"].shape == (27, 5)
    x, t = data(backend, (3, 2, 6, 6), 4)
    assert_gradients_match(net, x, t, rel_tol=1e-6)


DEEP_SHAPES_28 = {
    "W1": (16, 1, 3, 3),
    "W2": (16, 16, 3, 3),
    "W3": (32, 16, 3, 3),
    "W4": (32, 32, 3, 3),
    "W5": (64, 32, 3, 3),
    "W6": (64, 64, 3, 3),
    "W7": (64 * 4 * 4, 50),
    "W8": (50, 10),
}


def test_deep_conv_net_builds_with_named_params(backend):
    net = DeepConvNet(backend=backend, seed=0)
    expected = {f"{p}{i}" for p in "Wb" for i in range(1, 9)}
    assert set(net.params) == expected
    for key, shape in DEEP_SHAPES_28.items():
        assert net.params[key].shape == shape, key
        bias = net.params["b" + key[1:]]
        assert bias.shape == (shape[0] if len(shape) == 4 else shape[1],)
    # Addressed by name: the dict entry is the array the layer computes with.
    assert net.params["W3"] is net.layers["Conv3"].W
    assert net.params["W7"] is net.layers["Affine1"].W
    x = backend.asarray(numpy.random.default_rng(0).random((2, 1, 28, 28), dtype=numpy.float32))
    assert net.predict(x).shape == (2, 10)


def test_deep_conv_net_directional_gradient_check(backend):
    """Full central differences over ~70k weights would be slow; random directions test them all."""
    net = DeepConvNet(input_dim=(1, 6, 6), output_size=3, hidden_size=6, backend=backend, dtype=F64, seed=5)
    dropouts = [layer for layer in net.layers.values() if isinstance(layer, Dropout)]
    x, t = data(backend, (2, 1, 6, 6), 3)

    def same_masks():
        for layer in dropouts:
            layer.rng = backend.rng(layer.seed)  # the same dropout masks on every evaluation

    def loss():
        same_masks()
        return float(net.loss(x, t, train_flg=True))

    same_masks()
    grads = {k: backend.to_numpy(v).copy() for k, v in net.gradient(x, t).items()}
    rng = numpy.random.default_rng(6)
    h = 1e-5
    for key, param in net.params.items():
        direction = rng.standard_normal(param.shape)
        step = backend.asarray(h * direction)
        param += step
        upper = loss()
        param -= 2 * step
        lower = loss()
        param += step
        numeric = (upper - lower) / (2 * h)
        analytic = float((grads[key] * direction).sum())
        assert abs(numeric - analytic) <= 1e-6 * max(abs(analytic), 1e-3), (key, numeric, analytic)


def test_same_seed_gives_same_net_on_every_backend(backend):
    reference = TwoLayerNet(6, 5, 3, seed=9, backend="numpy")
    net = TwoLayerNet(6, 5, 3, seed=9, backend=backend)
    for key in reference.params:
        numpy.testing.assert_array_equal(backend.to_numpy(net.params[key]), reference.params[key])


def test_gradient_keeps_the_loss_of_its_own_forward_pass(backend):
    net = TwoLayerNet(6, 5, 3, weight_init_std=0.5, backend=backend, dtype=F64, seed=1)
    x, t = data(backend, (4, 6), 3)
    net.gradient(x, t)
    assert float(net.last_loss) == pytest.approx(float(net.loss(x, t, train_flg=True)), rel=1e-12)


def test_accuracy_counts_correct_predictions_in_batches(backend):
    net = TwoLayerNet(6, 5, 3, weight_init_std=0.5, backend=backend, dtype=F64, seed=1)
    x, _ = data(backend, (7, 6), 3)
    predicted = backend.to_numpy(net.predict(x)).argmax(axis=1)
    t = predicted.copy()
    t[:3] = (t[:3] + 1) % 3  # three wrong on purpose
    t = backend.asarray(t)
    assert net.accuracy(x, t, batch_size=2) == pytest.approx(4 / 7)
    one_hot = backend.asarray(numpy.eye(3)[backend.to_numpy(t)])
    assert net.accuracy(x, one_hot) == pytest.approx(4 / 7)


def test_book_gradient_check_on_a_float32_net_shows_small_differences():
    """The book's gradient_check.py on the default (float32) TwoLayerNet: the numerical gradient
    computes in float64, so the mean differences are float32 backprop rounding, not 1e-4."""
    from fastnet.datasets import load_dataset

    data = load_dataset("sample", flatten=True)
    network = TwoLayerNet(input_size=784, hidden_size=50, output_size=10, seed=0)
    x_batch, t_batch = data.x_train[:3], data.t_train[:3]
    params_before = {k: v for k, v in network.params.items()}
    grad_numerical = network.numerical_gradient(x_batch, t_batch)
    grad_backprop = network.gradient(x_batch, t_batch)
    for key in grad_numerical.keys():
        diff = numpy.average(numpy.abs(grad_backprop[key] - grad_numerical[key]))
        assert diff < 1e-6, f"{key}: {diff:.2e}"
        assert grad_numerical[key].dtype == numpy.float64
        assert network.params[key] is params_before[key] and network.params[key].dtype == numpy.float32


def test_numerical_gradient_leaves_a_float32_net_untouched(backend):
    net = MultiLayerNet(6, [5], 3, use_batchnorm=True, use_dropout=True, backend=backend, seed=4)
    x = backend.asarray(numpy.random.default_rng(0).random((4, 6), dtype=numpy.float32))
    t = backend.asarray(numpy.array([0, 1, 2, 1]))
    net.gradient(x, t)
    before = {k: backend.to_numpy(v).copy() for k, v in net.state_arrays().items()}
    state = net.layer_state()
    net.numerical_gradient(x, t, keys=["W1"], indices=[0, 7])
    for key, value in net.state_arrays().items():
        assert value.dtype == numpy.float32, key
        numpy.testing.assert_array_equal(backend.to_numpy(value), before[key], err_msg=key)
    assert net.layer_state()["Dropout1"] == state["Dropout1"]
