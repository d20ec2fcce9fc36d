"""Optimizers minimise a convex quadratic, update in place, and resume exactly from their state."""

import numpy
import pytest

from fastnet.errors import InputError
from fastnet.optim import OPTIMIZERS, make_optimizer
from fastnet.serialization import load_arrays, save_arrays

# Step sizes that suit the quadratic below (curvatures 0.5 .. 4).
LEARNING_RATES = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.5, "rmsprop": 0.02, "adam": 0.05}
CURVATURE = {"w": numpy.array([1.0, 4.0, 0.5, 2.0]), "v": numpy.array([[1.0, 0.7], [3.0, 1.5]])}
MINIMUM = {"w": numpy.array([1.5, -2.0, 0.3, 3.0]), "v": numpy.array([[0.5, -1.0], [2.0, 0.0]])}


class Quadratic:
    """L(p) = 0.5 * sum(a * (p - c)**2) over two float32 parameters on the backend."""

    def __init__(self, backend):
        self.backend = backend
        self.a = {k: backend.asarray(v, dtype=numpy.float32) for k, v in CURVATURE.items()}
        self.c = {k: backend.asarray(v, dtype=numpy.float32) for k, v in MINIMUM.items()}

    def start(self):
        return {
            "w": self.backend.asarray(numpy.zeros(4, numpy.float32)),
            "v": self.backend.asarray(numpy.ones((2, 2), numpy.float32)),
        }

    def loss(self, params):
        return sum(float((0.5 * self.a[k] * (params[k] - self.c[k]) ** 2).sum()) for k in params)

    def grads(self, params):
        return {k: self.a[k] * (params[k] - self.c[k]) for k in params}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_converges_on_a_quadratic(backend, name):
    problem = Quadratic(backend)
    params = problem.start()
    optimizer = OPTIMIZERS[name](lr=LEARNING_RATES[name])
    losses = [problem.loss(params)]
    for _ in range(500):
        optimizer.update(params, problem.grads(params))
        losses.append(problem.loss(params))
    assert losses[10] < losses[0]
    assert losses[-1] < 1e-4 * losses[0], f"{name}: loss {losses[0]:.3g} -> {losses[-1]:.3g}"
    for key in params:
        distance = numpy.abs(backend.to_numpy(params[key]) - MINIMUM[key]).max()
        assert distance < 1e-2, f"{name}: {key} ends {distance:.2e} from the minimum"


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_updates_are_in_place(backend, name):
    problem = Quadratic(backend)
    params = problem.start()
    originals = dict(params)
    before = {k: backend.to_numpy(v).copy() for k, v in params.items()}
    optimizer = OPTIMIZERS[name](lr=LEARNING_RATES[name])
    optimizer.update(params, problem.grads(params))
    for key in params:
        assert params[key] is originals[key]
        assert not numpy.array_equal(backend.to_numpy(params[key]), before[key]), key


def _run(optimizer, problem, params, steps):
    for _ in range(steps):
        optimizer.update(params, problem.grads(params))


def _copy(backend, params):
    return {k: backend.asarray(backend.to_numpy(v).copy()) for k, v in params.items()}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip_continues_identically(backend, name, tmp_path):
    problem = Quadratic(backend)
    first = OPTIMIZERS[name](lr=LEARNING_RATES[name])
    params = problem.start()
    _run(first, problem, params, 7)

    # In memory: both optimizers then step side by side; any shared slot array would show.
    resumed = OPTIMIZERS[name](lr=LEARNING_RATES[name])
    resumed.load_state_dict(*first.state_dict())
    resumed_params = _copy(backend, params)
    # Through a file, as a checkpoint does.
    info, arrays = first.state_dict(backend.to_numpy)
    save_arrays(tmp_path / "optim.npz", arrays, {"optimizer": info})
    loaded_arrays, meta = load_arrays(tmp_path / "optim.npz")
    from_file = OPTIMIZERS[name](lr=LEARNING_RATES[name])
    from_file.load_state_dict(meta["optimizer"], loaded_arrays, backend.asarray)
    file_params = _copy(backend, params)

    for _ in range(5):
        _run(first, problem, params, 1)
        _run(resumed, problem, resumed_params, 1)
        _run(from_file, problem, file_params, 1)
    assert resumed.iter == from_file.iter == first.iter == 12
    for key in params:
        expected = backend.to_numpy(params[key])
        numpy.testing.assert_array_equal(backend.to_numpy(resumed_params[key]), expected)
        numpy.testing.assert_array_equal(backend.to_numpy(file_params[key]), expected)


def test_state_dict_is_a_snapshot(backend):
    problem = Quadratic(backend)
    optimizer = OPTIMIZERS["adam"](lr=0.05)
    params = problem.start()
    _run(optimizer, problem, params, 3)
    info, arrays = optimizer.state_dict()
    frozen = {k: backend.to_numpy(v).copy() for k, v in arrays.items()}
    _run(optimizer, problem, params, 3)
    assert info["iter"] == 3 and set(arrays) == {"m.w", "m.v", "v.w", "v.v"}
    for key, value in arrays.items():
        numpy.testing.assert_array_equal(backend.to_numpy(value), frozen[key], err_msg=key)


def test_state_dict_for_another_optimizer_is_refused():
    adam = OPTIMIZERS["adam"]()
    with pytest.raises(InputError, match="Adam"):
        OPTIMIZERS["sgd"]().load_state_dict(*adam.state_dict())


def test_make_optimizer_by_name():
    assert type(make_optimizer("Adam", lr=0.1)).__name__ == "Adam"
    assert make_optimizer("sgd", lr=0.3).lr == 0.3
    with pytest.raises(InputError, match="choose one of"):
        make_optimizer("adamw")
    with pytest.raises(InputError, match="learning rate"):
        make_optimizer("sgd", lr=-1.0)


# --- weight decay -----------------------------------------------------------------------------------
COUPLED = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop")


@pytest.mark.parametrize("name", COUPLED)
def test_coupled_weight_decay_adds_the_l2_gradient_to_weights_only(backend, name):
    """With decay lambda, the step equals the plain optimizer fed grad + lambda * W (W: 2-D only)."""
    problem, lam = Quadratic(backend), 0.3
    decayed = OPTIMIZERS[name](lr=LEARNING_RATES[name], weight_decay=lam)
    plain = OPTIMIZERS[name](lr=LEARNING_RATES[name])
    params, reference = problem.start(), problem.start()
    for _ in range(6):
        grads = problem.grads(params)
        before = {k: backend.to_numpy(g).copy() for k, g in grads.items()}
        decayed.update(params, grads)
        for key in grads:  # the caller's gradients (a layer's dW) are not modified
            numpy.testing.assert_array_equal(backend.to_numpy(grads[key]), before[key])
        ref_grads = problem.grads(reference)
        ref_grads["v"] = ref_grads["v"] + lam * reference["v"]  # "w" is 1-D: a bias, not decayed
        plain.update(reference, ref_grads)
    for key in params:
        numpy.testing.assert_array_equal(backend.to_numpy(params[key]), backend.to_numpy(reference[key]))


def test_weight_decay_moves_the_minimum_towards_zero(backend):
    """SGD on 0.5*a*(p-c)^2 + 0.5*lambda*p^2 settles at a*c/(a+lambda) for the weights."""
    problem, lam = Quadratic(backend), 1.0
    params = problem.start()
    optimizer = OPTIMIZERS["sgd"](lr=0.1, weight_decay=lam)
    _run(optimizer, problem, params, 2000)
    expected = CURVATURE["v"] * MINIMUM["v"] / (CURVATURE["v"] + lam)
    numpy.testing.assert_allclose(backend.to_numpy(params["v"]), expected, atol=1e-5)
    numpy.testing.assert_allclose(backend.to_numpy(params["w"]), MINIMUM["w"], atol=1e-3)


def test_adamw_decay_is_decoupled_from_the_moments(backend):
    """With zero gradients Adam's step is zero, so AdamW only shrinks W by (1 - lr*lambda) per step."""
    lr, lam, steps = 0.01, 0.5, 20
    params = {
        "W": backend.asarray(numpy.full((3, 2), 2.0, numpy.float32)),
        "b": backend.asarray(numpy.full(2, 2.0, numpy.float32)),
    }
    zeros = {k: v * 0 for k, v in params.items()}
    optimizer = OPTIMIZERS["adam"](lr=lr, weight_decay=lam)
    for _ in range(steps):
        optimizer.update(params, zeros)
    expected = 2.0 * numpy.float32(1 - lr * lam) ** steps
    numpy.testing.assert_allclose(backend.to_numpy(params["W"]), expected, rtol=1e-6)
    numpy.testing.assert_array_equal(backend.to_numpy(params["b"]), numpy.full(2, 2.0, numpy.float32))
    numpy.testing.assert_array_equal(backend.to_numpy(optimizer.state["m"]["W"]), 0)


def test_adamw_matches_torch():
    torch = pytest.importorskip("torch")
    rng = numpy.random.default_rng(3)
    w0 = rng.standard_normal((4, 3))
    grads = [rng.standard_normal((4, 3)) for _ in range(10)]
    ours = {"W": w0.copy()}
    optimizer = OPTIMIZERS["adam"](lr=0.01, weight_decay=0.1)
    theirs = torch.tensor(w0.copy(), requires_grad=True)
    torch_opt = torch.optim.AdamW([theirs], lr=0.01, betas=(0.9, 0.999), eps=1e-7, weight_decay=0.1)
    for g in grads:
        optimizer.update(ours, {"W": g})
        theirs.grad = torch.tensor(g)
        torch_opt.step()
    # Only epsilon's placement differs (added to sqrt(v) before bias correction here): ~1e-6.
    numpy.testing.assert_allclose(ours["W"], theirs.detach().numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", ["momentum", "adam"])
def test_resume_with_weight_decay_is_exact(backend, name):
    problem = Quadratic(backend)
    first = OPTIMIZERS[name](lr=LEARNING_RATES[name], weight_decay=0.2)
    params = problem.start()
    _run(first, problem, params, 4)
    resumed = OPTIMIZERS[name](lr=LEARNING_RATES[name], weight_decay=0.2)
    resumed.load_state_dict(*first.state_dict(backend.to_numpy), backend.asarray)
    resumed_params = _copy(backend, params)
    _run(first, problem, params, 5)
    _run(resumed, problem, resumed_params, 5)
    for key in params:
        numpy.testing.assert_array_equal(backend.to_numpy(resumed_params[key]), backend.to_numpy(params[key]))


# --- hyper-parameters are checked at construction ---------------------------------------------------
@pytest.mark.parametrize(
    "make, named",
    [
        (lambda: OPTIMIZERS["sgd"](lr="0.1"), "lr"),
        (lambda: OPTIMIZERS["sgd"](lr=-0.1), "lr"),
        (lambda: OPTIMIZERS["sgd"](lr=0.0), "lr"),
        (lambda: OPTIMIZERS["adam"](lr=float("nan")), "lr"),
        (lambda: OPTIMIZERS["adam"](lr=float("inf")), "lr"),
        (lambda: OPTIMIZERS["sgd"](lr=True), "lr"),
        (lambda: OPTIMIZERS["momentum"](momentum=1.5), "momentum"),
        (lambda: OPTIMIZERS["nesterov"](momentum="0.9"), "momentum"),
        (lambda: OPTIMIZERS["rmsprop"](decay_rate=-0.1), "decay_rate"),
        (lambda: OPTIMIZERS["adam"](beta1=float("nan")), "beta1"),
        (lambda: OPTIMIZERS["adam"](beta2=1.0), "beta2"),
        (lambda: OPTIMIZERS["adagrad"](weight_decay=-1e-4), "weight_decay"),
        (lambda: OPTIMIZERS["sgd"](weight_decay=None), "weight_decay"),
        (lambda: make_optimizer(None), "optimizer"),
    ],
)
def test_invalid_hyperparameters_raise_input_error_naming_them(make, named):
    with pytest.raises(InputError, match=named):
        make()


def test_numpy_scalars_are_accepted():
    assert OPTIMIZERS["sgd"](lr=numpy.float32(0.5), weight_decay=numpy.float64(0.1)).lr == 0.5
    assert make_optimizer("adam", 0.01, weight_decay=0.1).weight_decay == 0.1


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_gradient_of_another_shape_is_refused_not_broadcast(backend, name):
    W = backend.asarray(numpy.ones((784, 50), numpy.float32))
    optimizer = make_optimizer(name, lr=0.01)
    with pytest.raises(InputError, match=r"gradient of 'W1' has shape \(1, 50\) but the parameter has \(784, 50\)"):
        optimizer.update({"W1": W}, {"W1": backend.asarray(numpy.ones((1, 50), numpy.float32))})
    with pytest.raises(InputError, match="no gradient for parameter 'W1'"):
        optimizer.update({"W1": W}, {"W2": W})
    numpy.testing.assert_array_equal(backend.to_numpy(W), 1.0)  # nothing was updated


def test_a_layer_refuses_nan_or_inf_weights_at_construction(backend):
    from fastnet.layers import Affine

    W = numpy.ones((4, 3), numpy.float32)
    W[2, 1] = numpy.nan
    with pytest.raises(InputError, match=r"Affine got a parameter of shape \(4, 3\) with NaN or inf"):
        Affine(W, numpy.zeros(3, numpy.float32), backend=backend)
    with pytest.raises(InputError, match="NaN or inf"):
        Affine(numpy.ones((4, 3), numpy.float32), numpy.array([0, numpy.inf, 0], numpy.float32), backend=backend)
