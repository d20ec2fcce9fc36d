"""Dropout as in the classic design: drop at training time, scale by (1 - ratio) at test time."""

from __future__ import annotations

from typing import Any

import numpy

from fastnet.annotations import Array, BackendLike
from fastnet.errors import InputError
from fastnet.layers.base import Layer, after_test_mode_error, check_dout, shape_of


class Dropout(Layer):
    """Its random generator is state: ``state_dict()`` holds it, so a checkpoint, a move to
    another backend or a measuring probe continues the same sequence of masks.

    On the host the generator's exact state is kept; a device generator (CuPy) exposes none, so
    its state is its seed and loading it restarts the sequence from that seed.  The mask is drawn
    in float32 whatever the input's dtype: a float64 copy of a net draws the same masks.

    Parameters
    ----------
    dropout_ratio : float
        The share of inputs dropped in training, in [0, 1).
    backend : Backend, str or None
        Where the layer computes (and draws its masks); None for the default backend.
    seed : int or None
        The seed of the layer's random stream; None for a fresh one.

    Raises
    ------
    InputError
        When ``dropout_ratio`` is out of range.

    Examples
    --------
    >>> import numpy
    >>> drop = Dropout(0.5, backend="numpy", seed=0)
    >>> drop.forward(numpy.ones((1, 4), numpy.float32), train_flg=False)
    array([[0.5, 0.5, 0.5, 0.5]], dtype=float32)
    """

    kind = "dropout"
    takes_train_flag = True
    draws_random = True

    def __init__(self, dropout_ratio: float = 0.5, backend: BackendLike = None, seed: int | None = None):
        super().__init__(backend)
        if not 0.0 <= dropout_ratio < 1.0:
            raise InputError(f"dropout_ratio must be in [0, 1); got {dropout_ratio}")
        self.dropout_ratio = dropout_ratio
        self.seed = seed
        self.rng = self.backend.rng(seed)
        self.mask: Array = None
        self.test_mode = False

    def forward(self, x: Array, train_flg: bool = True) -> Array:
        """In training, ``x`` with a random share ``dropout_ratio`` of its elements zeroed; in
        test mode, ``x * (1 - dropout_ratio)``.

        Raises
        ------
        InputError
            When ``x`` is not a floating array on this backend, or holds NaN/inf (while validating).
        """
        self._check_x(x, min_ndim=1)
        self.test_mode = not train_flg
        if train_flg:
            # A boolean mask: multiplying keeps x's dtype (no float64 detour).
            self.mask = self.rng.random(x.shape, dtype=numpy.float32) > self.dropout_ratio
            return x * self.mask
        self.mask = None
        return x * (1.0 - self.dropout_ratio)

    def backward(self, dout: Array) -> Array:
        """``dout`` through the last training forward's mask.

        Raises
        ------
        InputError
            After a test-mode forward, before any forward, or for ``dout`` of another shape.
        """
        if self.test_mode:
            raise after_test_mode_error("Dropout")
        check_dout(dout, shape_of(self.mask), "Dropout")
        return dout * self.mask

    # --- the random state -------------------------------------------------------------------------
    def reseed(self, seed: int | None) -> None:
        """Start a new stream from ``seed`` (a rank's own stream in a data-parallel run)."""
        self.seed = seed
        self.rng = self.backend.rng(seed)

    def state_dict(self) -> dict[str, Any]:
        """``{"rng": state}``: a host generator's bit-generator state (JSON-able), else ``{"seed": seed}``."""
        if isinstance(self.rng, numpy.random.Generator):
            return {"rng": self.rng.bit_generator.state}
        return {"rng": {"seed": self.seed}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the random stream a :meth:`state_dict` recorded.

        Raises
        ------
        InputError
            For unknown keys or a damaged state.
        """
        unknown = set(state) - {"rng"}
        if unknown:
            raise InputError(f"Dropout has no state named {', '.join(sorted(unknown))}")
        if "rng" not in state:
            return
        saved = state["rng"]
        if not isinstance(saved, dict):
            raise InputError(f"Dropout random state must be a dict; got {type(saved).__name__}")
        if not isinstance(self.rng, numpy.random.Generator) or "bit_generator" not in saved:
            self.rng = self.backend.rng(self.seed)  # a device generator restarts from its seed
            return
        before = self.rng.bit_generator.state
        try:
            self.rng.bit_generator.state = saved
        except (TypeError, ValueError, KeyError, OverflowError) as exc:  # Overflow: an int out of range
            self.rng.bit_generator.state = before
            raise InputError(f"Dropout random state is damaged ({exc})") from None

    def to(self, backend: BackendLike) -> Dropout:
        """Move to another backend, continuing the same random stream where the backend allows."""
        state = self.state_dict()
        super().to(backend)
        self.rng = self.backend.rng(self.seed)
        self.load_state_dict(state)
        return self

    def _clear_cache(self):
        self.mask = None
        self.test_mode = False
