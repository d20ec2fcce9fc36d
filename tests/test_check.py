"""fastnet check: backends agree with numpy layer by layer, and a broken kernel is caught."""

import numpy
import pytest

import fastnet.backends as registry
from fastnet.backends import Backend, get_backend, unavailable_reason
from fastnet.backends.numpy_kernels import NumpyKernels
from fastnet.cli.check import build_named_net
from fastnet.cli.main import main
from fastnet.parity import compare_backends, relative_difference
from tests.fastnet_cli import run_cli


class WrongReluKernels(NumpyKernels):
    """A plausible bug: the gradient passes where the output is >= 0, i.e. everywhere."""

    def relu_backward(self, dout, out):
        return self.xp.where(out >= 0, dout, 0)


def broken_numpy_backend():
    backend = Backend(numpy, WrongReluKernels(numpy))
    backend.name = "numpy-broken-relu"
    return backend


def batch(net_name, n=6, seed=0):
    from fastnet.cli.check import input_shape

    rng = numpy.random.default_rng(seed)
    return rng.random((n, *input_shape(net_name))).astype(numpy.float32), rng.integers(0, 10, n)


@pytest.fixture
def numba_available():
    reason = unavailable_reason("numba")
    if reason is not None:
        pytest.skip(f"numba unavailable: {reason}")


def test_relative_difference_is_scaled_by_the_reference():
    ref = numpy.array([0.0, 2.0, -4.0])
    assert relative_difference(ref, ref) == 0.0
    assert relative_difference(ref + [0.0, 0.0, 0.004], ref) == pytest.approx(1e-3)
    assert relative_difference(numpy.array([numpy.nan, 0, 0]), ref) == float("inf")


def test_cli_passes_on_numpy_and_numba_in_a_child_process(tmp_path, numba_available):
    result = run_cli("check", "--net", "simple-conv", "--backends", "numpy", "numba", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "numba agrees: worst difference" in result.stdout
    for row in ("output      Conv1+Relu1", "input grad  Pool1+Relu1", "param grad  W1", "output      loss"):
        assert row in result.stdout
    assert result.stdout.rstrip().endswith("ok: numba agrees with numpy")


@pytest.mark.parametrize("net", ["two-layer", "mlp", "deep-conv"])
def test_every_net_agrees_on_numba_dropout_included(net, numba_available):
    x, t = batch(net)
    (report,) = compare_backends(lambda b: build_named_net(net, b, "float32", 0), x, t, ["numba"])
    assert report.agrees, [(d.name, d.kind, d.value) for d in report.differences if d.value > report.tolerance]
    assert 0 < report.worst < 1e-5  # round-off, not bitwise luck: sums are ordered differently
    names = {d.name for d in report.differences}
    if net == "deep-conv":
        assert {"Dropout1", "W8", "Conv6+Relu6"} <= names


def test_a_broken_relu_backward_is_caught_at_its_layer():
    x, t = batch("simple-conv")
    (report,) = compare_backends(
        lambda b: build_named_net("simple-conv", b, "float32", 0), x, t, [broken_numpy_backend()]
    )
    assert not report.agrees and report.backend == "numpy-broken-relu"
    bad = {(d.kind, d.name) for d in report.differences if d.value > report.tolerance}
    # Outputs are untouched; the first wrong array is the gradient through the last ReLU.
    assert not any(kind == "output" for kind, _ in bad)
    assert ("input grad", "Relu2") in bad and ("param grad", "W1") in bad
    assert ("input grad", "Affine2") not in bad


def test_cli_exits_1_on_a_registered_backend_with_a_broken_kernel(monkeypatch, capsys, numba_available):
    """The numba backend in the registry is replaced, for this process, by a real NumbaBackend
    whose relu_backward is wrong; `fastnet check` must say so and exit 1."""
    from fastnet.backends.numba_backend import NumbaBackend
    from fastnet.backends.numba_kernels import NumbaKernels

    class WrongReluNumbaKernels(NumbaKernels):
        def relu_backward(self, dout, out):
            return self.xp.where(out >= 0, dout, 0)

    broken = NumbaBackend()
    broken.kernels = WrongReluNumbaKernels()
    monkeypatch.setitem(registry._loaded, "numba", broken)
    assert get_backend("numba") is broken
    code = main(["check", "--net", "two-layer", "--backends", "numba"])
    out = capsys.readouterr().out
    assert code == 1
    assert "numba DISAGREES" in out and out.rstrip().endswith("FAILED: numba disagrees with numpy")
    flagged = [line.split()[2] for line in out.splitlines() if line.rstrip().endswith("<- disagrees")]
    assert flagged[0] == "Relu1" and "W1" in flagged


def test_unavailable_backend_is_listed_with_its_reason(monkeypatch, capsys):
    monkeypatch.setitem(registry._failures, "cupy", "no CUDA device (test)")
    monkeypatch.delitem(registry._loaded, "cupy", raising=False)
    code = main(["check", "--net", "two-layer", "--backends", "cupy"])
    out = capsys.readouterr().out
    assert code == 0
    assert "cupy: unavailable (no CUDA device (test))" in out
    assert "nothing to compare" in out


def test_a_kernel_that_raises_is_reported_as_a_disagreement(capsys):
    from fastnet.cli.check import print_report

    class CrashingKernels(NumpyKernels):
        def maxpool_forward(self, *args, **kwargs):
            raise RuntimeError("device kernel launch failed\nsecond line")

    crashing = Backend(numpy, CrashingKernels(numpy))
    crashing.name = "crashing"
    x, t = batch("simple-conv")
    broken, fine = compare_backends(
        lambda b: build_named_net("simple-conv", b, "float32", 0), x, t, [crashing, get_backend("numpy")]
    )
    assert not broken.agrees and broken.error == "RuntimeError: device kernel launch failed"
    assert fine.agrees and fine.worst == 0.0
    print_report(broken)
    assert capsys.readouterr().out.strip() == (
        "crashing: FAILED to run the pass (RuntimeError: device kernel launch failed)"
    )
