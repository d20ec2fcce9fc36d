"""Bad input is refused at the door with an InputError (a ValueError) that names the problem."""

import numpy
import pytest

from fastnet.errors import InputError
from fastnet.layers import Affine, BatchNormalization, Convolution, Dropout, Pooling, Relu, Sigmoid, SoftmaxWithLoss
from fastnet.nets import SimpleConvNet, TwoLayerNet

F32 = numpy.float32


def host(shape, seed=0):
    return numpy.random.default_rng(seed).random(shape, dtype=F32)


def test_input_error_is_a_value_error():
    assert issubclass(InputError, ValueError)


# --- shapes at a layer -----------------------------------------------------------------------------
def make_layers(backend):
    return {
        "affine": Affine(host((6, 3)), numpy.zeros(3, F32), backend=backend),
        "conv": Convolution(host((4, 2, 3, 3)), numpy.zeros(4, F32), backend=backend),
        "pool": Pooling(2, 2, stride=2, backend=backend),
        "bn": BatchNormalization(numpy.ones(3, F32), numpy.zeros(3, F32), backend=backend),
        "softmax": SoftmaxWithLoss(backend=backend),
    }


WRONG_SHAPES = [
    ("affine", (2, 5), r"Affine expects 6 features.*\(2, 5\)"),
    ("affine", (2, 2, 2), r"Affine expects 6 features.*\(2, 2, 2\)"),
    ("conv", (2, 18), r"Convolution expects input of shape \(N, 2, H, W\); got \(2, 18\)"),
    ("conv", (2, 3, 5, 5), r"Convolution expects input of shape \(N, 2, H, W\); got \(2, 3, 5, 5\)"),
    ("conv", (2, 2, 2, 5), r"filter 3x3.*does not fit the 2x5 input"),
    ("pool", (2, 8), r"Pooling expects input of shape \(N, C, H, W\); got \(2, 8\)"),
    ("pool", (2, 1, 1, 4), r"Pooling window 2x2 does not fit the 1x4 input"),
    ("bn", (2, 3, 4), r"BatchNormalization takes \(N, D\) or \(N, C, H, W\) input; got \(2, 3, 4\)"),
    ("bn", (2, 4), r"BatchNormalization has 3 features/channels.*\(2, 4\) has 4"),
    ("bn", (2, 5, 2, 2), r"BatchNormalization has 3 features/channels.*has 5"),
    ("softmax", (2, 3, 1), r"SoftmaxWithLoss expects scores of shape \(N, classes\)"),
]


@pytest.mark.parametrize("kind, shape, message", WRONG_SHAPES)
def test_wrong_input_shape_at_a_layer(backend, kind, shape, message):
    layer = make_layers(backend)[kind]
    x = backend.asarray(host(shape))
    with pytest.raises(InputError, match=message):
        if kind == "softmax":
            layer.forward(x, backend.asarray(numpy.zeros(shape[0], numpy.int64)))
        else:
            layer.forward(x)


def test_wrong_input_size_at_a_net(backend):
    net = TwoLayerNet(6, 4, 3, backend=backend, seed=0)
    with pytest.raises(InputError, match="6 features"):
        net.predict(backend.asarray(host((2, 7))))
    conv = SimpleConvNet(
        input_dim=(1, 6, 6),
        conv_param={"filter_num": 2, "filter_size": 3},
        hidden_size=4,
        output_size=3,
        backend=backend,
        seed=0,
    )
    with pytest.raises(InputError, match=r"\(N, 1, H, W\)"):
        conv.predict(backend.asarray(host((2, 3, 6, 6))))
    with pytest.raises(InputError, match="features"):
        conv.predict(backend.asarray(host((2, 1, 8, 8))))  # the conv fits; the affine after it does not


# --- labels ---------------------------------------------------------------------------------------
BAD_LABELS = [
    (numpy.array([0, 3, 1]), r"label 3, outside the 3 classes 0..2"),
    (numpy.array([0, -1, 1]), r"label -1, outside the 3 classes"),
    (numpy.array([0, 1]), r"2 labels but the batch has 3 samples"),
    (numpy.eye(4, dtype=F32)[[0, 1, 2]], r"one-hot t has shape \(3, 4\); expected \(3, 3\)"),
    (numpy.eye(3, dtype=F32)[[0, 1]], r"one-hot t has shape \(2, 3\); expected \(3, 3\)"),
    (numpy.array([0.0, 1.0, 2.0], F32), r"t has dtype float32; integer class labels are needed"),
    (numpy.zeros((3, 3, 1), F32), r"t has shape \(3, 3, 1\)"),
    (numpy.array([[1, 0, 0], [0, 1, 0], [0, numpy.nan, 1]], F32), r"t contains 1 NaN or inf"),
]


@pytest.mark.parametrize("t, message", BAD_LABELS)
@pytest.mark.parametrize("method", ["loss", "gradient", "accuracy"])
def test_bad_labels_at_the_net(backend, t, message, method):
    net = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    with pytest.raises(InputError, match=message):
        getattr(net, method)(backend.asarray(host((3, 4))), backend.asarray(t))


@pytest.mark.parametrize("t, message", BAD_LABELS)
def test_bad_labels_at_the_loss_layer(backend, t, message):
    with pytest.raises(InputError, match=message):
        SoftmaxWithLoss(backend=backend).forward(backend.asarray(host((3, 3))), backend.asarray(t))


# --- values: NaN and inf ----------------------------------------------------------------------------
@pytest.mark.parametrize("bad", [numpy.nan, numpy.inf, -numpy.inf])
@pytest.mark.parametrize("method", ["predict", "loss", "gradient", "accuracy"])
def test_non_finite_input_at_the_net(backend, bad, method):
    net = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    x = host((3, 4))
    x[1, 2] = bad
    args = (
        (backend.asarray(x),) if method == "predict" else (backend.asarray(x), backend.asarray(numpy.array([0, 1, 2])))
    )
    with pytest.raises(InputError, match=r"x contains 1 NaN or inf"):
        getattr(net, method)(*args)


def _standalone_layers(backend):
    layers = make_layers(backend)
    layers.update(relu=Relu(backend=backend), sigmoid=Sigmoid(backend=backend), dropout=Dropout(backend=backend))
    return layers


INPUT_SHAPES = {
    "affine": (2, 6),
    "conv": (2, 2, 4, 4),
    "pool": (2, 2, 4, 4),
    "bn": (2, 3),
    "softmax": (2, 3),
    "relu": (2, 3),
    "sigmoid": (2, 3),
    "dropout": (2, 3),
}


def _forward(backend, layer, kind, x):
    if kind == "softmax":
        return layer.forward(x, backend.asarray(numpy.zeros(x.shape[0], numpy.int64)))
    return layer.forward(x)


@pytest.mark.parametrize("kind", INPUT_SHAPES)
def test_non_finite_input_at_a_standalone_layer(backend, kind):
    layer = _standalone_layers(backend)[kind]
    x = host(INPUT_SHAPES[kind])
    x.flat[1] = numpy.nan
    x.flat[3] = numpy.inf
    with pytest.raises(InputError, match=r"x contains 2 NaN or inf"):
        _forward(backend, layer, kind, backend.asarray(x))


# --- dtypes, emptiness, wrong kinds of object ---------------------------------------------------
@pytest.mark.parametrize("kind", INPUT_SHAPES)
@pytest.mark.parametrize("dtype", [numpy.int64, numpy.uint8, numpy.bool_])
def test_non_float_input_at_a_layer(backend, kind, dtype):
    layer = _standalone_layers(backend)[kind]
    x = backend.asarray(numpy.ones(INPUT_SHAPES[kind], dtype))
    with pytest.raises(InputError, match=f"x has dtype {numpy.dtype(dtype)}.*floating-point"):
        _forward(backend, layer, kind, x)


@pytest.mark.parametrize("method", ["predict", "loss", "gradient", "accuracy"])
def test_non_float_input_at_the_net(backend, method):
    net = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    t = backend.asarray(numpy.array([0, 1]))
    for x in (numpy.ones((2, 4), numpy.int32), numpy.full((2, 4), "a")):
        if x.dtype.kind == "U" and backend.xp is not numpy:
            continue  # a device array module has no string dtype
        args = (backend.asarray(x),) if method == "predict" else (backend.asarray(x), t)
        with pytest.raises(InputError, match=f"x has dtype {x.dtype}; fastnet needs floating-point"):
            getattr(net, method)(*args)


def test_string_input_at_a_layer():
    with pytest.raises(InputError, match="x has dtype <U1"):
        Affine(host((2, 3)), numpy.zeros(3, F32)).forward(numpy.full((4, 2), "a"))


def test_empty_batch(backend):
    net = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    empty = backend.asarray(numpy.zeros((0, 4), F32))
    with pytest.raises(InputError, match="empty batch"):
        net.predict(empty)
    with pytest.raises(InputError, match="empty batch"):
        net.loss(empty, backend.asarray(numpy.zeros(0, numpy.int64)))
    with pytest.raises(InputError, match="empty batch"):
        net.accuracy(empty, backend.asarray(numpy.zeros(0, numpy.int64)))
    for kind, shape in INPUT_SHAPES.items():
        with pytest.raises(InputError, match="empty batch"):
            _forward(
                backend, _standalone_layers(backend)[kind], kind, backend.asarray(numpy.zeros((0,) + shape[1:], F32))
            )


def test_wrong_float_dtype_at_the_net(backend):
    net32 = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    with pytest.raises(InputError, match="x has dtype float64 but the net computes in float32"):
        net32.predict(backend.asarray(host((2, 4)).astype(numpy.float64)))
    net64 = TwoLayerNet(4, 5, 3, backend=backend, dtype="float64", seed=0)
    with pytest.raises(InputError, match="x has dtype float32 but the net computes in float64"):
        net64.loss(backend.asarray(host((2, 4))), backend.asarray(numpy.array([0, 1])))


@pytest.mark.parametrize("kind", ["affine", "conv", "bn"])
def test_wrong_float_dtype_at_a_layer_with_weights(backend, kind):
    layer = make_layers(backend)[kind]
    with pytest.raises(InputError, match="x has dtype float64 but this .* computes in float32"):
        layer.forward(backend.asarray(host(INPUT_SHAPES[kind]).astype(numpy.float64)))


def test_input_that_is_not_an_array(backend):
    net = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    with pytest.raises(InputError, match="x is a builtins.list"):
        net.predict([[0.0, 1.0, 2.0, 3.0]])
    with pytest.raises(InputError, match="x is a builtins.list"):
        Relu(backend=backend).forward([[0.0, 1.0]])


def test_a_single_sample_without_batch_axis(backend):
    net = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    with pytest.raises(InputError, match=r"x has shape \(4,\); expected a batch.*x\[None\]"):
        net.predict(backend.asarray(host(4)))


# --- order of calls -----------------------------------------------------------------------------
@pytest.mark.parametrize("kind", INPUT_SHAPES)
def test_backward_before_forward(backend, kind):
    layer = _standalone_layers(backend)[kind]
    with pytest.raises(InputError, match="backward called before forward"):
        layer.backward(backend.asarray(numpy.ones((2, 3), F32)))


def test_backward_before_forward_at_the_net(backend):
    with pytest.raises(InputError, match="backward called before forward"):
        TwoLayerNet(4, 5, 3, backend=backend, seed=0).backward()


@pytest.mark.parametrize("kind", ["conv", "pool", "affine", "bn"])
def test_backward_after_moving_needs_a_new_forward(backend, kind):
    """Moving drops what forward saved, so backward must say so rather than use stale state."""
    layer = make_layers(backend)[kind]
    out = layer.forward(backend.asarray(host(INPUT_SHAPES[kind])))
    layer.to(backend)
    with pytest.raises(InputError, match="backward called before forward"):
        layer.backward(out)


def test_backward_with_the_wrong_shape(backend):
    layer = Affine(host((6, 3)), numpy.zeros(3, F32), backend=backend)
    layer.forward(backend.asarray(host((2, 6))))
    with pytest.raises(InputError, match=r"dout of shape \(2, 4\); expected the forward output's shape \(2, 3\)"):
        layer.backward(backend.asarray(numpy.ones((2, 4), F32)))


# --- construction --------------------------------------------------------------------------------
def test_bad_layer_construction():
    with pytest.raises(InputError, match="Affine needs W of shape"):
        Affine(numpy.ones((3, 2), F32), numpy.zeros(3, F32))
    with pytest.raises(InputError, match="stride >= 1"):
        Convolution(numpy.ones((2, 1, 3, 3), F32), numpy.zeros(2, F32), stride=0)
    with pytest.raises(InputError, match="more than half"):
        Pooling(2, 2, pad=2)
    with pytest.raises(InputError, match=r"dropout_ratio must be in \[0, 1\)"):
        Dropout(1.0)
    with pytest.raises(InputError, match="dtype must be a floating-point type"):
        TwoLayerNet(4, 5, 3, dtype="int32")


# --- misuse of the API: one line naming the problem, never a raw exception -------------------------
@pytest.mark.parametrize("dout", [1, 2.5, None, [[1.0, 2.0, 3.0]]], ids=["int", "float", "none", "list"])
def test_backward_with_something_that_is_not_an_array(backend, dout):
    layer = Affine(host((6, 3)), numpy.zeros(3, F32), backend=backend)
    layer.forward(backend.asarray(host((1, 6))))
    with pytest.raises(
        InputError,
        match=r"Affine.backward needs dout as an array of the forward output's "
        r"shape \(1, 3\)",
    ):
        layer.backward(dout)


@pytest.mark.parametrize(
    "sizes, message",
    [
        ((784, -5, 10), "hidden_size must be a whole number of at least 1.*-5"),
        ((784, 0, 10), "hidden_size must be a whole number of at least 1.*got 0"),
        ((0, 5, 10), "input_size must be"),
        ((784, 5.5, 10), "hidden_size must be"),
        ((784, 5, True), "output_size must be"),
    ],
)
def test_two_layer_net_sizes(sizes, message):
    with pytest.raises(InputError, match=message):
        TwoLayerNet(*sizes)


def test_multi_layer_net_sizes():
    from fastnet.nets import MultiLayerNet

    with pytest.raises(InputError, match=r"hidden_size_list must be .*\[10, 0\]"):
        MultiLayerNet(784, [10, 0], 10)
    with pytest.raises(InputError, match="hidden_size_list must be"):
        MultiLayerNet(784, [10, -3], 10)


NOT_ONE_HOT = [
    (numpy.full((3, 3), 5, F32), r"one-hot t row 0 is \[5\. 5\. 5\.\], not a one-hot row"),
    (numpy.array([[1, 0, 0], [0, -1, 0], [0, 0, 1]], F32), r"one-hot t row 1 is \[ 0\. -1\.  0\.\]"),
    (numpy.array([[1, 0, 0], [0, 1, 0], [0.5, 0.5, 1]], F32), r"one-hot t row 2 "),
    (numpy.array([[1, 0, 0], [0, 0, 0], [0, 0, 1]], F32), r"one-hot t row 1 "),
    (numpy.array([[2, -1, 0], [0, 1, 0], [0, 0, 1]], F32), r"one-hot t row 0 "),
]


@pytest.mark.parametrize("t, message", NOT_ONE_HOT)
@pytest.mark.parametrize("method", ["loss", "gradient", "accuracy"])
def test_rows_that_are_not_one_hot_are_refused(backend, t, message, method):
    net = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    with pytest.raises(InputError, match=message + ".*single 1 and zeros"):
        getattr(net, method)(backend.asarray(host((3, 4))), backend.asarray(t))
    with pytest.raises(InputError, match=message):
        SoftmaxWithLoss(backend=backend).forward(backend.asarray(host((3, 3))), backend.asarray(t))


def test_probability_rows_are_accepted(backend):
    """Label smoothing: non-negative rows summing to 1 are a meaningful cross-entropy target."""
    net = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    smooth = numpy.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.1, 0.1, 0.8]], F32)
    assert numpy.isfinite(float(net.loss(backend.asarray(host((3, 4))), backend.asarray(smooth))))


@pytest.mark.parametrize("bad", [numpy.nan, numpy.inf])
@pytest.mark.parametrize("net_kind", ["two-layer", "simple-conv"])
def test_non_finite_input_in_a_later_batch_is_found(backend, bad, net_kind):
    """The check reads the first layer's output (where that is equivalent) batch by batch; the
    message still counts the bad values of the whole input."""
    if net_kind == "two-layer":
        net, shape = TwoLayerNet(4, 5, 3, backend=backend, seed=0), (7, 4)
    else:
        net = SimpleConvNet(
            input_dim=(1, 6, 6),
            conv_param={"filter_num": 2, "filter_size": 3},
            hidden_size=4,
            output_size=3,
            backend=backend,
            seed=0,
        )
        shape = (7, 1, 6, 6)
    x = host(shape)
    x[5].flat[0] = bad
    x[6].flat[1] = bad
    t = backend.asarray(numpy.zeros(7, numpy.int64))
    with pytest.raises(InputError, match="x contains 2 NaN or inf"):
        net.accuracy(backend.asarray(x), t, batch_size=2)
    with pytest.raises(InputError, match="x contains 2 NaN or inf"):
        net.predict(backend.asarray(x))


def test_a_net_with_non_finite_weights_predicts_as_before(backend):
    """Only the input is the door's business: non-finite weights give non-finite scores, no error."""
    net = TwoLayerNet(4, 5, 3, backend=backend, seed=0)
    net.params["W1"][0, 0] = numpy.nan
    scores = backend.to_numpy(net.predict(backend.asarray(host((3, 4)))))
    assert not numpy.isfinite(scores).all()
