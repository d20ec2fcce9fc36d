"""Optimizers: ``update(params, grads)`` updates the arrays in place, on their backend.

Slot state (velocities, moments) is created from the parameters themselves, so it lives on the
same backend and in the same dtype; ``state_dict``/``load_state_dict`` carry it in checkpoints.

``weight_decay`` (lambda) pulls weights towards zero.  SGD, Momentum, Nesterov, AdaGrad and
RMSprop add the L2 gradient ``lambda * W`` to the loss gradient; Adam decays the weights
directly, ``W -= lr * lambda * W``, decoupled from its moment estimates (AdamW), because an L2
gradient would be rescaled by Adam's per-weight step sizes.  Only weights (arrays with two or
more dimensions: affine and convolution W) are decayed, not biases or BatchNorm's gamma/beta.
With ``weight_decay=0`` the arithmetic is exactly the classic one.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

from fastnet.errors import InputError


def check_hyperparameter(
    name: str, value: object, low: float = 0.0, high: float = math.inf, low_open: bool = False, high_open: bool = True
) -> float:
    """``value`` as a float, when it is a real number in the interval.

    Parameters
    ----------
    name : str
        What the value is, for the error message (e.g. ``"learning rate (lr)"``).
    value : real number
        The value to check; text, bools, NaN and inf are refused.
    low, high : float
        The interval's ends; ``low_open`` and ``high_open`` leave them out.

    Returns
    -------
    float

    Raises
    ------
    InputError
        Naming ``name``, the interval and the value given.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name} must be a number; got {value!r} ({type(value).__name__})")
    value = float(value)
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if math.isnan(value) or too_low or too_high:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        raise InputError(f"{name} must be in {left}{low:g}, {high:g}{right}; got {value!r}")
    return value


def _gradient_for(key, param, grads):
    """The gradient of ``params[key]``, of its exact shape: broadcasting a (1, 50) gradient into a
    (784, 50) weight would update every row alike without a word."""
    try:
        grad = grads[key]
    except KeyError:
        raise InputError(
            f"no gradient for parameter {key!r} (grads has {sorted(grads)}); pass the "
            f"gradients of these very parameters, e.g. net.gradient(x, t)"
        ) from None
    if tuple(grad.shape) != tuple(param.shape):
        raise InputError(
            f"the gradient of {key!r} has shape {tuple(grad.shape)} but the parameter has "
            f"{tuple(param.shape)}; pass gradients of the parameters' own shapes"
        )
    return grad


def _decays(param) -> bool:
    return param.ndim >= 2


class Optimizer:
    """The base of every optimizer: ``update(params, grads)`` changes the parameters in place.

    Parameters
    ----------
    lr : float
        The learning rate, > 0. A schedule may set ``optimizer.lr`` before each update.
    weight_decay : float
        Lambda of the weight decay (see the module's description), >= 0.

    Examples
    --------
    >>> from fastnet.nets import TwoLayerNet
    >>> from fastnet.optim import SGD
    >>> import numpy
    >>> net = TwoLayerNet(784, 50, 10, backend="numpy", seed=0)
    >>> x, t = numpy.zeros((2, 784), numpy.float32), numpy.array([3, 7])
    >>> SGD(lr=0.1).update(net.params, net.gradient(x, t))
    """

    slots: tuple = ()

    def __init__(self, lr: float, weight_decay: float = 0.0):
        self.lr = check_hyperparameter("learning rate (lr)", lr, low_open=True)
        self.weight_decay = check_hyperparameter("weight_decay", weight_decay)
        self.iter = 0
        self.state: dict[str, dict] = {slot: {} for slot in self.slots}
        self._kernels: Any = None  # during update: the kernels of the parameters, when they name them

    def _slot(self, slot, key, like):
        table = self.state[slot]
        if key not in table:
            table[key] = like * 0  # same backend, shape and dtype as the parameter
            table[key][...] = 0  # also clears NaN/inf that "* 0" would keep
        return table[key]

    def update(self, params: Mapping[str, Any], grads: Mapping[str, Any]) -> None:
        """One step: every array of ``params`` moves along the gradient of the same name.

        Parameters
        ----------
        params : mapping of str to array
            The net's parameters (``net.params``), changed in place.
        grads : mapping of str to array
            Their gradients (``net.gradient(x, t)``), of the same names and shapes.

        Raises
        ------
        InputError
            When a gradient is missing or has another shape; nothing is updated then.
        """
        checked = {key: _gradient_for(key, params[key], grads) for key in params.keys()}  # all, before any update
        # A net's parameters (``net.params``) name their backend; its kernels may fuse an update.
        # Held for this call only: an optimizer stays a plain object to copy or pickle.
        self._kernels = getattr(getattr(params, "backend", None), "kernels", None)
        self.iter += 1
        try:
            for key, grad in checked.items():
                param = params[key]
                if self.weight_decay and _decays(param):
                    grad = self._decay(param, grad)
                self._update_one(key, param, grad)
        finally:
            self._kernels = None

    def _decay(self, param, grad):
        """Coupled L2: a new gradient array (the layer's dW is left as backprop made it)."""
        return grad + self.weight_decay * param

    def _update_one(self, key, param, grad):
        raise NotImplementedError

    # --- checkpoints -------------------------------------------------------------------------------
    def state_dict(self, to_numpy: Callable = lambda a: a.copy()) -> tuple[dict, dict]:
        """``(info, arrays)``: the name, step count and rate, and the slot arrays (``"v.W1"``, ...).

        A snapshot: later updates do not change it. ``to_numpy`` converts each array (e.g. from
        the GPU); by default it is copied.
        """
        arrays = {
            f"{slot}.{key}": to_numpy(value) for slot, table in self.state.items() for key, value in table.items()
        }
        return {"name": type(self).__name__, "iter": self.iter, "lr": self.lr}, arrays

    def load_state_dict(self, info: dict, arrays: Mapping[str, Any], asarray: Callable = lambda a: a) -> None:
        """Continue from a :meth:`state_dict`; ``asarray`` puts each array on the backend.

        Raises
        ------
        InputError
            When the state is another optimizer's.
        """
        if info.get("name") != type(self).__name__:
            raise InputError(f"optimizer state is for {info.get('name')}, not {type(self).__name__}")
        self.iter = int(info.get("iter", 0))
        self.state = {slot: {} for slot in self.slots}
        for name, value in arrays.items():
            slot, key = name.split(".", 1)
            if slot in self.state:
                # Own a copy: updating in place must not write into the caller's arrays.
                self.state[slot][key] = asarray(value).copy()


class SGD(Optimizer):
    """Stochastic gradient descent: ``W -= lr * dW`` (the book's SGD)."""

    def __init__(self, lr: float = 0.01, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)

    def _update_one(self, key, param, grad):
        # A plain dict of arrays takes the expression; a net's params its backend's kernel (the
        # same arithmetic, in one pass on numba).
        update = sgd_step if self._kernels is None else self._kernels.sgd_update
        update(param, grad, self.lr)


class Momentum(Optimizer):
    """Momentum SGD: ``v = momentum * v - lr * dW; W += v``.

    Parameters
    ----------
    momentum : float
        In [0, 1); the share of the last step kept.
    """

    slots = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.momentum = check_hyperparameter("momentum", momentum, high=1.0)

    def _update_one(self, key, param, grad):
        v = self._slot("v", key, param)
        update = momentum_step if self._kernels is None else self._kernels.momentum_update
        update(param, grad, v, self.lr, self.momentum)


class Nesterov(Optimizer):
    """Nesterov's accelerated gradient, in the classic formulation."""

    slots = ("v",)

    def __init__(self, lr: float = 0.01, momentum: float = 0.9, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.momentum = check_hyperparameter("momentum", momentum, high=1.0)

    def _update_one(self, key, param, grad):
        v = self._slot("v", key, param)
        v *= self.momentum
        v -= self.lr * grad
        param += self.momentum * self.momentum * v
        param -= (1 + self.momentum) * self.lr * grad


class AdaGrad(Optimizer):
    """AdaGrad: each weight's rate shrinks with the sum of its squared gradients."""

    slots = ("h",)

    def __init__(self, lr: float = 0.01, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)

    def _update_one(self, key, param, grad):
        h = self._slot("h", key, param)
        h += grad * grad
        param -= self.lr * grad / (h**0.5 + 1e-7)


class RMSprop(Optimizer):
    """RMSprop: AdaGrad with a moving average of the squared gradients.

    Parameters
    ----------
    decay_rate : float
        In [0, 1); how much of the average each step keeps.
    """

    slots = ("h",)

    def __init__(self, lr: float = 0.01, decay_rate: float = 0.99, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.decay_rate = check_hyperparameter("decay_rate", decay_rate, high=1.0)

    def _update_one(self, key, param, grad):
        h = self._slot("h", key, param)
        h *= self.decay_rate
        h += (1 - self.decay_rate) * grad * grad
        param -= self.lr * grad / (h**0.5 + 1e-7)


ADAM_EPS = 1e-7


class Adam(Optimizer):
    """Adam; with ``weight_decay`` it is AdamW (decay decoupled from the moments)."""

    slots = ("m", "v")

    def __init__(self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, weight_decay: float = 0.0):
        super().__init__(lr, weight_decay)
        self.beta1 = check_hyperparameter("beta1", beta1, high=1.0)
        self.beta2 = check_hyperparameter("beta2", beta2, high=1.0)

    def update(self, params: Mapping[str, Any], grads: Mapping[str, Any]) -> None:
        # Bias correction folded into the step size, as in the classic code.
        t = self.iter + 1
        self._lr_t = self.lr * math.sqrt(1.0 - self.beta2**t) / (1.0 - self.beta1**t)
        super().update(params, grads)

    def _decay(self, param, grad):
        param *= 1.0 - self.lr * self.weight_decay  # decoupled: the moments never see it
        return grad

    def _update_one(self, key, param, grad):
        m = self._slot("m", key, param)
        v = self._slot("v", key, param)
        update = adam_step if self._kernels is None else self._kernels.adam_update
        update(param, grad, m, v, self._lr_t, self.beta1, self.beta2)


# --- the updates as array expressions: any array type; a backend's fused kernel matches them ---
def sgd_step(param: Any, grad: Any, lr: float) -> None:
    """``param -= lr * grad``, in place."""
    param -= lr * grad


def momentum_step(param: Any, grad: Any, v: Any, lr: float, momentum: float) -> None:
    """``v = momentum * v - lr * grad; param += v``, in place."""
    v *= momentum
    v -= lr * grad
    param += v


def adam_step(param: Any, grad: Any, m: Any, v: Any, lr_t: float, beta1: float, beta2: float) -> None:
    """Adam's moments and step in place; ``lr_t`` is the rate with the bias correction folded in."""
    m += (1 - beta1) * (grad - m)
    v += (1 - beta2) * (grad * grad - v)
    param -= lr_t * m / (v**0.5 + ADAM_EPS)


OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSprop,
    "adam": Adam,
}


def make_optimizer(name: str, lr: float | None = None, weight_decay: float = 0.0) -> Optimizer:
    """The optimizer called ``name`` (a key of ``OPTIMIZERS``, any case), with its default rate
    unless ``lr`` is given.

    Raises
    ------
    InputError
        For an unknown name, listing the known ones.

    Examples
    --------
    >>> make_optimizer("adam", lr=0.001).lr
    0.001
    """
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise InputError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}")
    cls = OPTIMIZERS[name.lower()]
    return cls(weight_decay=weight_decay) if lr is None else cls(lr=lr, weight_decay=weight_decay)
