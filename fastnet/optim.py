"""Optimizers: ``update(params, grads)`` updates the arrays in place, on their backend.

Slot state (velocities, moments) is created from the parameters themselves, so it lives on the
same backend and in the same dtype; ``state_dict``/``load_state_dict`` carry it in checkpoints.
"""
from __future__ import annotations

import math

from fastnet.errors import InputError


class Optimizer:
    slots: tuple = ()

    def __init__(self, lr):
        if not lr > 0 or not math.isfinite(lr):
            raise InputError(f"learning rate must be a positive number; got {lr}")
        self.lr = lr
        self.iter = 0
        self.state: dict[str, dict] = {slot: {} for slot in self.slots}

    def _slot(self, slot, key, like):
        table = self.state[slot]
        if key not in table:
            table[key] = like * 0  # same backend, shape and dtype as the parameter
            table[key][...] = 0    # also clears NaN/inf that "* 0" would keep
        return table[key]

    def update(self, params, grads):
        self.iter += 1
        for key in params.keys():
            self._update_one(key, params[key], grads[key])

    def _update_one(self, key, param, grad):
        raise NotImplementedError

    # --- checkpoints -------------------------------------------------------------------------------
    def state_dict(self, to_numpy=lambda a: a.copy()):
        """A snapshot: later updates must not change it (hence the copy when nothing converts)."""
        arrays = {f"{slot}.{key}": to_numpy(value)
                  for slot, table in self.state.items() for key, value in table.items()}
        return {"name": type(self).__name__, "iter": self.iter, "lr": self.lr}, arrays

    def load_state_dict(self, info, arrays, asarray=lambda a: a):
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
    def __init__(self, lr=0.01):
        super().__init__(lr)

    def _update_one(self, key, param, grad):
        param -= self.lr * grad


class Momentum(Optimizer):
    slots = ("v",)

    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(lr)
        self.momentum = momentum

    def _update_one(self, key, param, grad):
        v = self._slot("v", key, param)
        v *= self.momentum
        v -= self.lr * grad
        param += v


class Nesterov(Optimizer):
    """Nesterov's accelerated gradient, in the classic formulation."""

    slots = ("v",)

    def __init__(self, lr=0.01, momentum=0.9):
        super().__init__(lr)
        self.momentum = momentum

    def _update_one(self, key, param, grad):
        v = self._slot("v", key, param)
        v *= self.momentum
        v -= self.lr * grad
        param += self.momentum * self.momentum * v
        param -= (1 + self.momentum) * self.lr * grad


class AdaGrad(Optimizer):
    slots = ("h",)

    def __init__(self, lr=0.01):
        super().__init__(lr)

    def _update_one(self, key, param, grad):
        h = self._slot("h", key, param)
        h += grad * grad
        param -= self.lr * grad / (h ** 0.5 + 1e-7)


class RMSprop(Optimizer):
    slots = ("h",)

    def __init__(self, lr=0.01, decay_rate=0.99):
        super().__init__(lr)
        self.decay_rate = decay_rate

    def _update_one(self, key, param, grad):
        h = self._slot("h", key, param)
        h *= self.decay_rate
        h += (1 - self.decay_rate) * grad * grad
        param -= self.lr * grad / (h ** 0.5 + 1e-7)


class Adam(Optimizer):
    slots = ("m", "v")

    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        super().__init__(lr)
        self.beta1 = beta1
        self.beta2 = beta2

    def update(self, params, grads):
        self.iter += 1
        # Bias correction folded into the step size, as in the classic code.
        self._lr_t = self.lr * math.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for key in params.keys():
            self._update_one(key, params[key], grads[key])

    def _update_one(self, key, param, grad):
        m = self._slot("m", key, param)
        v = self._slot("v", key, param)
        m += (1 - self.beta1) * (grad - m)
        v += (1 - self.beta2) * (grad * grad - v)
        param -= self._lr_t * m / (v ** 0.5 + 1e-7)


OPTIMIZERS = {"sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
              "rmsprop": RMSprop, "adam": Adam}


def make_optimizer(name: str, lr: float | None = None) -> Optimizer:
    try:
        cls = OPTIMIZERS[name.lower()]
    except KeyError:
        raise InputError(f"unknown optimizer {name!r}; choose one of: {', '.join(OPTIMIZERS)}") from None
    return cls() if lr is None else cls(lr=lr)
