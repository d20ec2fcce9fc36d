"""Optimizers minimise a convex quadratic, update in place, and resume exactly from their state."""
import numpy
import pytest

from fastnet.errors import InputError
from fastnet.optim import OPTIMIZERS, make_optimizer
from fastnet.serialization import load_arrays, save_arrays

# Step sizes that suit the quadratic below (curvatures 0.5 .. 4).
LEARNING_RATES = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.5, "rmsprop": 0.02,
                  "adam": 0.05}
CURVATURE = {"w": numpy.array([1.0, 4.0, 0.5, 2.0]), "v": numpy.array([[1.0, 0.7], [3.0, 1.5]])}
MINIMUM = {"w": numpy.array([1.5, -2.0, 0.3, 3.0]), "v": numpy.array([[0.5, -1.0], [2.0, 0.0]])}


class Quadratic:
    """L(p) = 0.5 * sum(a * (p - c)**2) over two float32 parameters on the backend."""

    def __init__(self, backend):
        self.backend = backend
        self.a = {k: backend.asarray(v, dtype=numpy.float32) for k, v in CURVATURE.items()}
        self.c = {k: backend.asarray(v, dtype=numpy.float32) for k, v in MINIMUM.items()}

    def start(self):
        return {"w": self.backend.asarray(numpy.zeros(4, numpy.float32)),
                "v": self.backend.asarray(numpy.ones((2, 2), numpy.float32))}

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
