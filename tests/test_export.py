"""Nets out of fastnet: ONNX (run by onnxruntime), safetensors (read back by fastnet.load) and
PyTorch (to_torch / from_torch), each checked against fastnet's own outputs on real MNIST
test images (the embedded sample).

Tolerance: float32 sums of up to 1,568 products (DeepConvNet's widest) in another order differ by
a few float32 epsilons (1.2e-7) times the length of the sums' terms at the scale of the row; 1e-5
of the row's largest score is the bound the exports must meet.
"""

import numpy
import pytest
from fastnet_cli import run_cli

from fastnet.datasets import load_dataset
from fastnet.layers import Layer, Relu
from fastnet.nets import DeepConvNet, MultiLayerNet, Sequential, SimpleConvNet, TwoLayerNet

RTOL = 1e-5


def trained_a_little(net, flatten, steps=20):
    """A few SGD steps on real images, so BatchNorm statistics and weights are not their initial ones."""
    from fastnet.optim import SGD

    data = load_dataset("sample", flatten=flatten, progress=False)
    optimizer = SGD(lr=0.05)
    for step in range(steps):
        rows = slice(step * 50, step * 50 + 50)
        optimizer.update(
            net.params, net.gradient(net.backend.asarray(data.x_train[rows]), net.backend.asarray(data.t_train[rows]))
        )
    return net, data.x_test[:300]


NETS = {
    "two-layer": (lambda: TwoLayerNet(784, 50, 10, backend="numpy", seed=0), True),
    "mlp-bn-dropout-sigmoid": (
        lambda: MultiLayerNet(
            784,
            [60, 40],
            10,
            activation="sigmoid",
            use_batchnorm=True,
            use_dropout=True,
            dropout_ratio=0.3,
            backend="numpy",
            seed=0,
        ),
        True,
    ),
    "simple-conv": (lambda: SimpleConvNet(backend="numpy", seed=0), False),
    "deep-conv": (lambda: DeepConvNet(backend="numpy", seed=0), False),
}


@pytest.fixture(scope="module", params=list(NETS))
def net_and_images(request):
    build, flatten = NETS[request.param]
    return trained_a_little(build(), flatten, steps=4 if request.param == "deep-conv" else 20)


def assert_close(found, expected):
    found, expected = numpy.asarray(found, numpy.float64), numpy.asarray(expected, numpy.float64)
    scale = numpy.abs(expected).max(axis=1, keepdims=True)
    assert (numpy.abs(found - expected) <= RTOL * scale).all(), numpy.abs(found - expected).max()


def assert_same_predictions(found, expected):
    """Equal argmax wherever the top two scores are further apart than the tolerance."""
    ordered = numpy.sort(expected, axis=1)
    clear = ordered[:, -1] - ordered[:, -2] > 2 * RTOL * numpy.abs(expected).max(axis=1)
    assert clear.mean() > 0.95
    assert (found.argmax(axis=1)[clear] == expected.argmax(axis=1)[clear]).all()


def test_onnx_matches_fastnet(net_and_images, tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs onnx (pip install 'fastnet[onnx]')")
    ort = pytest.importorskip("onnxruntime", reason="the check runs the graph in onnxruntime")
    from fastnet.interop.onnx_export import OPSET, save_onnx

    net, x = net_and_images
    path = save_onnx(net, tmp_path / "net.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scores, probabilities = session.run(["scores", "probabilities"], {"x": x})
    expected = net.predict(x)
    assert_close(scores, expected)
    assert_close(probabilities, net.predict_proba(x))
    assert_same_predictions(scores, expected)
    import onnx

    assert onnx.load(str(path)).opset_import[0].version >= OPSET >= 17


def test_torch_twin_matches_fastnet_both_ways(net_and_images):
    torch = pytest.importorskip("torch", reason="PyTorch interop needs torch")
    from fastnet.interop import from_torch, to_torch

    net, x = net_and_images
    model = to_torch(net)
    with torch.no_grad():
        scores = model(torch.from_numpy(x)).numpy()
    assert_close(scores, net.predict(x))
    assert_same_predictions(scores, net.predict(x))
    back = from_torch(model, backend="numpy")
    assert_close(back.predict(x), scores)
    for key, value in net.state_arrays().items():  # the same arrays under the same names
        if key in back.params:
            assert numpy.array_equal(back.params[key], value)


def test_from_torch_takes_a_model_made_in_torch():
    torch = pytest.importorskip("torch", reason="PyTorch interop needs torch")
    from fastnet.interop import from_torch

    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1),
        nn.BatchNorm2d(6, eps=1e-6),
        nn.ReLU(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(6 * 14 * 14, 32),
        nn.Sigmoid(),
        nn.Dropout(0.5),
        nn.Linear(32, 10),
    )
    x = torch.from_numpy(load_dataset("sample", flatten=False, progress=False).x_test[:100])
    model.train()
    for _ in range(3):
        model(x)  # moves the BatchNorm statistics away from 0 and 1
    model.eval()
    with torch.no_grad():
        expected = model(x).numpy()
    net = from_torch(model, backend="numpy")
    assert sorted(net.params) == ["W1", "W2", "W3", "b1", "b2", "b3", "beta1", "gamma1"]
    assert_close(net.predict(x.numpy()), expected)


def test_from_torch_names_what_it_cannot_take():
    torch = pytest.importorskip("torch", reason="PyTorch interop needs torch")
    from fastnet.interop import UnsupportedLayer, from_torch

    with pytest.raises(UnsupportedLayer, match=r"1 \(Tanh\)"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Tanh()))


class Square(Layer):
    def forward(self, x):
        return x * x

    def backward(self, dout):
        return dout


def test_unexportable_layers_are_named_in_one_line():
    pytest.importorskip("onnx", reason="ONNX export needs onnx")
    from fastnet.interop import UnsupportedLayer
    from fastnet.interop.onnx_export import to_onnx

    rng = numpy.random.default_rng(0)
    net = Sequential(backend="numpy")
    from fastnet.layers import Affine

    net.add("Affine1", Affine(rng.random((4, 3)), numpy.zeros(3)), suffix="1")
    net.add("Mine", Square())
    net.add("Relu1", Relu())
    with pytest.raises(UnsupportedLayer) as caught:
        to_onnx(net)
    message = str(caught.value)
    assert "Mine (Square)" in message and "\n" not in message


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    done = run_cli(
        "train",
        "--net",
        "mlp",
        "--hidden",
        "40",
        "30",
        "--batchnorm",
        "--dropout",
        "0.2",
        "--dataset",
        "sample",
        "--epochs",
        "1",
        "--limit",
        "2000",
        "--backend",
        "numpy",
        "--out",
        out / "run",
        "--quiet",
        tmp_path=out,
    )
    assert done.returncode == 0, done.stderr
    return out / "run" / "checkpoint.npz"


def test_safetensors_export_loads_back_exactly(checkpoint, tmp_path):
    pytest.importorskip("safetensors", reason="safetensors export needs safetensors")
    import fastnet

    done = run_cli(
        "export", checkpoint, "--format", "safetensors", "--out", tmp_path / "net.safetensors", tmp_path=tmp_path
    )
    assert done.returncode == 0, done.stderr
    original = fastnet.load(checkpoint, backend="numpy")
    again = fastnet.load(tmp_path / "net.safetensors", backend="numpy")
    assert original.state_arrays().keys() == again.state_arrays().keys()
    assert any(".running_var" in k for k in again.state_arrays())
    for key, value in original.state_arrays().items():
        assert numpy.array_equal(again.state_arrays()[key], value), key
    x = load_dataset("sample", progress=False).x_test[:200]
    assert numpy.array_equal(again.predict(x), original.predict(x))


def test_torch_file_loads_with_weights_only(checkpoint, tmp_path):
    torch = pytest.importorskip("torch", reason="PyTorch export needs torch")
    import fastnet
    from fastnet.interop import to_torch

    done = run_cli("export", checkpoint, "--format", "torch", "--out", tmp_path / "net.pt", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    saved = torch.load(tmp_path / "net.pt", weights_only=True)
    net = fastnet.load(checkpoint, backend="numpy")
    model = to_torch(net)
    for p in model.parameters():
        p.data.zero_()
    model.load_state_dict(saved["state_dict"])
    x = load_dataset("sample", progress=False).x_test[:200]
    with torch.no_grad():
        assert_close(model(torch.from_numpy(x)).numpy(), net.predict(x))


def test_onnx_export_command_and_missing_file(checkpoint, tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs onnx")
    done = run_cli("export", checkpoint, "--format", "onnx", "--out", tmp_path / "net.onnx", tmp_path=tmp_path)
    assert done.returncode == 0 and (tmp_path / "net.onnx").stat().st_size > 1000, done.stderr
    done = run_cli("export", tmp_path / "nope.npz", "--format", "onnx", "--out", tmp_path / "x.onnx", tmp_path=tmp_path)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "no such file" in done.stderr
