"""Learning-rate schedules: exact values, warm-up, purity (resume from the iteration), checks."""

import math
from itertools import pairwise

import numpy
import pytest

from fastnet.errors import InputError
from fastnet.optim import OPTIMIZERS
from fastnet.schedules import Schedule, make_schedule


def rates(schedule, n):
    return [schedule.lr_at(i) for i in range(n)]


def test_constant_with_warmup():
    s = Schedule("constant", 0.1, total=10, warmup=4)
    assert rates(s, 7) == pytest.approx([0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1], abs=0, rel=1e-15)
    assert rates(Schedule("constant", 0.1, total=3), 5) == [0.1] * 5


def test_step_decays_by_gamma_every_step_size_after_warmup():
    s = Schedule("step", 1.0, total=20, warmup=2, step_size=3, gamma=0.5)
    assert rates(s, 11) == [0.5, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25]


def test_step_default_decays_at_thirds_of_the_run():
    s = Schedule("step", 1.0, total=9)
    assert rates(s, 9) == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01, 0.01, 0.01])


def test_cosine_values():
    s = Schedule("cosine", 1.0, total=10, warmup=2, min_lr=0.1)
    got = rates(s, 12)
    assert got[:2] == [0.5, 1.0]
    expected = [0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * k / 8)) for k in range(9)]
    assert got[2:11] == pytest.approx(expected, rel=1e-15)
    assert got[6] == pytest.approx(0.55)  # half way: the mean of base and min
    assert got[10] == got[11] == pytest.approx(0.1)  # after the run: stays at min_lr
    assert all(a >= b for a, b in pairwise(got[2:]))


def test_rates_in_epochs_become_iterations():
    s = make_schedule("step", 0.1, epochs=6, iterations_per_epoch=100, warmup_epochs=0.5, step_epochs=2, gamma=0.1)
    assert (s.total, s.warmup, s.step_size) == (600, 50, 200)
    assert s.lr_at(49) == pytest.approx(0.1) and s.lr_at(249) == pytest.approx(0.1)
    assert s.lr_at(250) == pytest.approx(0.01)


def test_apply_sets_the_optimizer_rate_from_its_iteration():
    s = Schedule("cosine", 0.2, total=5, warmup=1)
    optimizer = OPTIMIZERS["momentum"](lr=0.2)
    params = {"W": numpy.ones((2, 2))}
    seen = []
    for _ in range(5):
        seen.append(s.apply(optimizer))
        optimizer.update(params, {"W": numpy.ones((2, 2))})
    assert seen == rates(s, 5)
    assert optimizer.lr == s.lr_at(4)


def test_resume_from_config_and_iteration_alone_is_exact():
    """A run interrupted after 7 updates and resumed from (schedule dict, optimizer state) follows
    the uninterrupted run bitwise."""
    rng = numpy.random.default_rng(0)
    grads = [{"W": rng.standard_normal((3, 3)).astype(numpy.float32)} for _ in range(15)]
    start = rng.standard_normal((3, 3)).astype(numpy.float32)
    s = Schedule("cosine", 0.05, total=15, warmup=3)

    def train(optimizer, schedule, params, steps):
        for g in steps:
            schedule.apply(optimizer)
            optimizer.update(params, g)

    straight = {"W": start.copy()}
    train(OPTIMIZERS["adam"](lr=0.05, weight_decay=0.01), s, straight, grads)

    first = OPTIMIZERS["adam"](lr=0.05, weight_decay=0.01)
    interrupted = {"W": start.copy()}
    train(first, s, interrupted, grads[:7])
    saved_schedule, (info, arrays) = s.to_dict(), first.state_dict()
    resumed = OPTIMIZERS["adam"](lr=0.05, weight_decay=0.01)
    resumed.load_state_dict(info, arrays)
    train(resumed, Schedule.from_dict(saved_schedule), interrupted, grads[7:])
    numpy.testing.assert_array_equal(interrupted["W"], straight["W"])


@pytest.mark.parametrize(
    "kwargs, named",
    [
        (dict(name="linear", base_lr=0.1, total=10), "schedule"),
        (dict(name="step", base_lr="0.1", total=10), "base learning rate"),
        (dict(name="step", base_lr=-1.0, total=10), "base learning rate"),
        (dict(name="step", base_lr=0.1, total=0), "total"),
        (dict(name="step", base_lr=0.1, total=10, warmup=-1), "warm-up"),
        (dict(name="step", base_lr=0.1, total=10, warmup=1.5), "warm-up"),
        (dict(name="step", base_lr=0.1, total=10, gamma=0.0), "gamma"),
        (dict(name="step", base_lr=0.1, total=10, gamma=2.0), "gamma"),
        (dict(name="cosine", base_lr=0.1, total=10, min_lr=0.5), "min_lr"),
        (dict(name="cosine", base_lr=0.1, total=10, warmup=10), "warm-up"),
    ],
)
def test_invalid_settings_raise_input_error_naming_them(kwargs, named):
    with pytest.raises(InputError, match=named):
        Schedule(**kwargs)


def test_invalid_iteration_and_dict_are_refused():
    s = Schedule("constant", 0.1, total=10)
    with pytest.raises(InputError, match="iteration"):
        s.lr_at(-1)
    with pytest.raises(InputError, match="iteration"):
        s.lr_at(2.5)
    with pytest.raises(InputError, match="unknown"):
        Schedule.from_dict({**s.to_dict(), "decay": 3})
    with pytest.raises(InputError, match="dict"):
        Schedule.from_dict([1, 2])
    assert Schedule.from_dict(s.to_dict()) == s
    assert s.lr_at(numpy.int64(3)) == 0.1
