"""A net is an ordered container of layers: forward in order, backward in reverse."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy

from fastnet.annotations import Array, BackendLike, DTypeLike, PathLike
from fastnet.backends import get_backend
from fastnet.errors import InputError
from fastnet.layers import SoftmaxWithLoss
from fastnet.layers.protocol import Declaration, declaration
from fastnet.nets.inference_plan import InferencePlan
from fastnet.nets.inputs import check_input_scale, check_net_input, label_name
from fastnet.nets.params import ParamDict
from fastnet.nets.state import NetStateAndModes
from fastnet.validation import ValueChecks, check_finite, check_labels

_N = TypeVar("_N", bound="Sequential")


class Sequential(NetStateAndModes):
    """Layers assembled like Lego, with parameters addressed by name.

    The net owns its state and its modes.  ``state_dict()`` holds everything that makes its
    numbers (parameters, BatchNorm statistics, dropout random state); ``layer_state()`` what
    the layers keep beyond their parameters.  The public methods check their
    arrays (NaN/inf, label range) unless inside ``with net.trusted_inputs():``, for data checked
    once with ``net.check_inputs``; ``with net.probe():`` runs a forward that leaves no trace.

    Parameters
    ----------
    backend : Backend, str or None
        Where the net computes; None for the default backend.  Layers added join it.
    dtype : dtype or str
        The floating dtype of the parameters and of the inputs the net takes.
    weight_decay_lambda : float
        Lambda of the L2 penalty ``0.5 * lambda * sum(W**2)`` that ``loss`` adds (0: none).
    fuse : bool
        Run an Affine or Convolution and the ReLU after it in one pass.

    Raises
    ------
    InputError
        When ``dtype`` is not a floating type.

    Examples
    --------
    >>> import numpy
    >>> from fastnet.layers import Affine, Relu
    >>> rng = numpy.random.default_rng(0)
    >>> net = Sequential(backend="numpy")
    >>> _ = net.add("Affine1", Affine(rng.normal(size=(4, 3)), numpy.zeros(3)), suffix="1")
    >>> _ = net.add("Relu1", Relu())
    >>> _ = net.add("Affine2", Affine(rng.normal(size=(3, 2)), numpy.zeros(2)), suffix="2")
    >>> sorted(net.params)
    ['W1', 'W2', 'b1', 'b2']
    >>> net.predict(numpy.ones((5, 4), numpy.float32)).shape
    (5, 2)
    >>> sorted(net.gradient(numpy.ones((5, 4), numpy.float32), numpy.array([0, 1, 0, 1, 0])))
    ['W1', 'W2', 'b1', 'b2']
    """

    def __init__(
        self,
        backend: BackendLike = None,
        dtype: DTypeLike = "float32",
        weight_decay_lambda: float = 0.0,
        fuse: bool = True,
    ):
        self.backend = get_backend(backend)
        self.dtype = numpy.dtype(dtype)
        if self.dtype.kind != "f":
            raise InputError(f"dtype must be a floating-point type such as float32; got {self.dtype}")
        self.layers: OrderedDict[str, Any] = OrderedDict()  # fastnet Layers or book-style objects
        self.set_loss(SoftmaxWithLoss(backend=self.backend))
        self.weight_decay_lambda = float(weight_decay_lambda)
        self.fuse = fuse
        self.validate_inputs = True
        self.last_loss: Array = None
        self._param_index: dict[str, tuple] = {}
        self._declared: dict[str, Declaration] = {}  # layer name -> what it declares (fastnet.layers.protocol)
        self.params = ParamDict(self)

    # --- assembling -------------------------------------------------------------------------------
    def add(self, name: str, layer: Any, suffix: str | int | None = None) -> Any:
        """Append a layer; its parameters are registered as ``<param><suffix>`` (e.g. W1, b1).

        The layer joins the net's backend and dtype: float64 NumPy weights in a float32 net are
        converted here, once.

        Parameters
        ----------
        name : str
            The layer's name in ``layers`` (e.g. ``"Affine1"``), unique in the net.
        layer : Layer or object
            A fastnet layer, or a book-style object of your own with ``forward``/``backward``
            (taken as it is, with no registered parameters).
        suffix : str, int or None
            Appended to the layer's parameter names (``W`` -> ``W1``); None for none.

        Returns
        -------
        Layer or object
            ``layer`` itself.

        Raises
        ------
        InputError
            When ``name`` or a parameter name is taken already.
        """
        if name in self.layers:
            raise InputError(f"the net already has a layer named {name!r}")
        declared = declaration(layer)
        for attr in declared.params:
            key = attr + ("" if suffix is None else str(suffix))
            if key in self._param_index:
                raise InputError(f"parameter name {key!r} is already used; give {name} another suffix")
            self._param_index[key] = (layer, attr)
        if declared.native:  # a book-style layer of the user's own is taken as it is
            if layer.backend is not self.backend:
                layer.to(self.backend)
            layer.astype(self.dtype)
            # Only the first layer sees user data; the net checks that once at its door.
            layer.validate = False
        self.layers[name] = layer
        self._declared[name] = declared
        self._refresh_input_grad()
        return layer

    def set_loss(self, layer: Any) -> Any:
        """Make ``layer`` the loss layer (the book's ``lastLayer``; by default SoftmaxWithLoss).

        Returns
        -------
        Layer or object
            ``layer`` itself.
        """
        self.lastLayer = layer
        if hasattr(layer, "validate"):
            layer.validate = False
        return layer

    def _refresh_input_grad(self):
        # The first layer's input gradient is never used in training: skip that matrix product.
        for i, layer in enumerate(self.layers.values()):
            if hasattr(layer, "need_input_grad"):
                layer.need_input_grad = i > 0

    @property
    def input_layer(self) -> Any:
        """The first layer (the one that sees the net's input)."""
        return next(iter(self.layers.values()))

    @property
    def output_size(self) -> int:
        """The number of outputs per sample (classes), from the last layer that fixes it.

        Raises
        ------
        InputError
            When no layer fixes it (no Affine or Convolution).
        """
        for name, layer in reversed(self.layers.items()):
            size = layer.output_size() if self._declared[name].native else None
            if size is not None:
                return size
        raise InputError("the net has no layer that fixes its output size (an Affine or a Convolution)")

    # --- checks at the door ---------------------------------------------------------------------
    def check_inputs(self, x: Array, t: Array | None = None, name: str = "x", t_name: str | None = None) -> Array:
        """Check data once, reading every value whatever the mode; then train or predict on it
        inside ``with net.trusted_inputs():``.

        ``x``: floating point in the net's dtype, finite, and not so large that a gradient step
        overflows the dtype.  ``t`` (optional): labels or one-hot rows for ``x``, named
        ``t_name`` (default: ``name`` with its x changed to t).

        Returns
        -------
        array
            ``x`` itself.

        Raises
        ------
        InputError
            Naming ``name`` (or ``t_name``) and what is wrong with it.
        """
        check_net_input(self, x, name)
        check_finite(self.backend, x, name)
        check_input_scale(self, x, name)
        if t is not None:
            check_labels(self.backend, t, x.shape[0], self.output_size, t_name or label_name(name))
        return x

    def _door(self, x, name="x"):
        """Structure always; values unless trusted.  Returns what the forward must still check:
        ``()``, or ``((x, name),)`` for the first layer's output.

        When the first layer propagates NaN/inf (a matrix product does), the check reads its
        small output instead of the whole input, and reads the input only to say what is wrong.
        """
        check_net_input(self, x, name)
        if not self.validate_inputs:
            return ()
        self.value_checks.next_batch()
        if self.layers and getattr(self.input_layer, "propagates_nonfinite", False):
            return ((x, name),)
        self.value_checks.finite(x, x, name)
        return ()

    def _check_t(self, t, n, name="t"):
        classes = self.output_size
        if self.validate_inputs and not self.value_checks.deferred:
            return check_labels(self.backend, t, n, classes, name)  # structure, then values, at once
        check_labels(self.backend, t, n, classes, name, read_values=False)
        if self.validate_inputs:
            self.value_checks.labels(t, classes, name)
        return t

    @property
    def value_checks(self) -> ValueChecks:
        """NaN/inf and label checks; on a GPU they wait on the device for ``raise_pending()``."""
        return ValueChecks.of(self)

    # --- the classic API -------------------------------------------------------------------------
    def predict(self, x: Array, train_flg: bool = False) -> Array:
        """The scores (logits) of the layers before the loss, one row per sample.

        Parameters
        ----------
        x : array
            Input in the net's dtype, on its backend: ``(N, features)`` or ``(N, C, H, W)``.
        train_flg : bool
            Run Dropout and BatchNorm in training mode.

        Returns
        -------
        array of shape (N, output_size)

        Raises
        ------
        InputError
            When ``x`` does not fit the net (shape, dtype, backend) or holds NaN/inf (unless
            inside ``trusted_inputs``).
        """
        return self._forward(x, train_flg, *self._door(x))

    def _inference_plan(self) -> InferencePlan:
        plan = self.__dict__.get("_plan")
        if plan is None or plan.key != InferencePlan.key_of(self):
            plan = self.__dict__["_plan"] = InferencePlan(self)
        return plan

    def _forward(self, x, train_flg, *pending):
        """The forward pass, every one of them: each layer checks the first input of each shape
        (per mode); later ones of that shape skip the per-layer checks
        (fastnet.nets.inference_plan).  ``pending`` as from :meth:`_door`."""
        plan = self._inference_plan()
        train = bool(train_flg)
        if not plan.has_passed(x, train):
            out = self._checked_forward(x, train_flg, *pending)
            plan.passed(x, train)
            return out
        try:
            return plan.run(x, pending, train)
        except InputError:
            raise
        except Exception:
            # A layer was changed since (a weight of another shape): the checked forward names it.
            plan.shapes_passed.clear()
            return self._checked_forward(x, train_flg, *pending)

    def _checked_forward(self, x, train_flg, pending=None):
        """Layer by layer, every layer checking its input, a fused pair (Affine+Relu, Conv+Relu)
        in one pass.

        ``pending`` (``(input, name)``, from ``_door``): the input's values are still to be
        checked, on the first layer's output, so that layer runs on its own.
        """
        layers = list(self.layers.items())
        i = 0
        while i < len(layers):
            name, layer = layers[i]
            alone = i + 1 == len(layers) or (i == 0 and pending is not None)
            fused = None if alone else self.fused_forward(name, layers[i + 1][0])
            if fused is not None:
                x = fused(x, layers[i + 1][1])
                i += 2
                continue
            x = layer.forward(x, train_flg) if self._declared[name].takes_train_flag else layer.forward(x)
            if i == 0 and pending is not None:
                self.value_checks.finite(x, *pending)  # reads the input itself only to say what is wrong
            i += 1
        return x

    def declared(self, name: str) -> Declaration:
        """What the layer ``name`` declares (``fastnet.layers.protocol.Declaration``)."""
        return self._declared[name]

    def fused_forward(self, name: str, following: str) -> Any:
        """The pass running layer ``name`` and the layer ``following`` it together, or None."""
        if not self.fuse:
            return None
        return self._declared[name].fused_forward(self.layers[name], self._declared[following].kind)

    def loss(self, x: Array, t: Array, train_flg: bool = False) -> Array:
        """Mean cross-entropy (plus 0.5 * lambda * sum W**2 when weight decay is on).

        Parameters
        ----------
        x : array
            Input, as for :meth:`predict`.
        t : array of shape (N,) or (N, classes)
            Integer labels or one-hot rows.
        train_flg : bool
            Run Dropout and BatchNorm in training mode.

        Returns
        -------
        array
            A 0-d array on the backend, also kept in ``last_loss``.
        """
        y = self.predict(x, train_flg)
        self._check_t(t, x.shape[0])
        loss = self._inference_plan().loss(x, y, t, bool(train_flg))
        if self.weight_decay_lambda:
            loss = loss + 0.5 * self.weight_decay_lambda * sum((w * w).sum() for w in self._decayed_params())
        self.last_loss = loss
        return loss

    def _decayed_params(self):
        for layer in self.layers.values():
            for attr in getattr(layer, "decay_names", ()):
                yield getattr(layer, attr)

    def predict_batches(self, x: Array, batch_size: int = 1000) -> Iterator[tuple[slice, Array]]:
        """Test-mode scores batch by batch, to bound memory: yields ``(rows, scores)``.

        ``x``'s structure is checked once, here; its values batch by batch as the batches run.
        """
        pending = self._door(x)
        return (
            (rows, self._forward(x[rows], False, *pending))
            for rows in (slice(start, start + batch_size) for start in range(0, x.shape[0], batch_size))
        )

    def predict_proba(self, x: Array, batch_size: int = 1000) -> Array:
        """Class probabilities (softmax of the test-mode scores), one row per sample."""
        from fastnet.probabilities import softmax

        xp = self.backend.xp
        return xp.concatenate([softmax(xp, y) for _, y in self.predict_batches(x, batch_size)])

    def accuracy(self, x: Array, t: Array, batch_size: int = 1000) -> float:
        """Fraction of correct predictions, computed in batches to bound memory."""
        batches = self.predict_batches(x, batch_size)
        self._check_t(t, x.shape[0])
        labels = t if t.ndim == 1 else t.argmax(axis=1)
        correct = 0
        for rows, y in batches:
            correct += (y.argmax(axis=1) == labels[rows]).sum()
        fraction = float(correct) / x.shape[0]  # the device is read here anyway: its checks too
        self.value_checks.raise_pending()
        return fraction

    def backward(self, dout: float | Array = 1) -> Array | None:
        """Backpropagate from the loss; returns the input gradient when the first layer made one."""
        dout = self.lastLayer.backward(dout)
        for step in self._inference_plan().backward_steps():
            dout = step(dout)
        return dout

    def gradient(self, x: Array, t: Array) -> dict[str, Array]:
        """Gradients of the loss by backpropagation, keyed like ``params``.

        The loss of this very forward pass is kept in ``last_loss``: logging it needs no
        second forward pass.

        Parameters
        ----------
        x : array
            A batch of input, as for :meth:`predict`.
        t : array of shape (N,) or (N, classes)
            Its labels or one-hot rows.

        Returns
        -------
        dict of str to array
            The layers' own gradient arrays (``dW``, ...), overwritten by the next call.
        """
        self.loss(x, t, train_flg=True)
        self.backward(1)
        grads = {}
        for key, (layer, attr) in self._param_index.items():
            grad = getattr(layer, layer.grad_names[attr])
            if self.weight_decay_lambda and attr in getattr(layer, "decay_names", ()):
                grad += self.weight_decay_lambda * getattr(layer, attr)
            grads[key] = grad
        return grads

    def numerical_gradient(
        self,
        x: Array,
        t: Array,
        h: float = 1e-4,
        keys: Sequence[str] | None = None,
        indices: Sequence[int] | None = None,
    ) -> dict[str, numpy.ndarray]:
        """Central-difference gradients of the training-mode ``loss`` (slow; checks ``gradient``).

        Computed in float64 whatever the net's dtype, on float64 copies of the parameters and
        of ``x``: rounding in float32 would swamp the differences (the book's gradient check on
        a float32 TwoLayerNet then shows mean differences below 1e-6, not about 1e-4).  Returns
        float64 arrays.  Every loss evaluation starts from the state this call found (the same
        dropout masks), in training mode like ``gradient``; afterwards the net is as it was.
        ``keys`` and ``indices`` (flat positions) restrict the work for big nets.
        """
        from fastnet.gradcheck import numerical_gradient

        if self.validate_inputs:
            self.check_inputs(x, t)
        x64 = x.astype(numpy.float64)
        t64 = t.astype(numpy.float64) if t.ndim == 2 else t
        with self.probe(), self.computing_in(numpy.float64):
            start = self.layer_state()

            def loss():
                self.load_layer_state(start)
                return float(self.loss(x64, t64, train_flg=True))

            return {
                key: numerical_gradient(loss, self.params[key], h, indices)
                for key in (self.params if keys is None else keys)
            }

    # --- state: moving, saving, loading -------------------------------------------------------------
    def state_arrays(self) -> dict[str, Array]:
        """Every persistent array (parameters and layer state) by its stored name."""
        arrays = dict(self.params.items())
        for name, layer in self.layers.items():
            for attr in getattr(layer, "state_names", ()):
                arrays[f"{name}.{attr}"] = getattr(layer, attr)
        return arrays

    def set_state_arrays(self, arrays: Mapping[str, Array]) -> None:
        """Copy host arrays into the net (shapes already checked by the caller)."""
        for key, value in arrays.items():
            if key in self._param_index:
                layer, attr = self._param_index[key]
            else:
                layer_name, attr = key.rsplit(".", 1)
                layer = self.layers[layer_name]
            current = getattr(layer, attr)
            current[...] = self.backend.asarray(value, dtype=current.dtype)

    def save_params(self, path: PathLike = "params.npz") -> Path:
        """Write the parameters and state, with a description of the layers, to an ``.npz`` file
        (written atomically); ``fastnet.load`` or :meth:`load_params` read it back.

        Returns
        -------
        pathlib.Path
            The file written.

        Raises
        ------
        WriteError
            When the file cannot be written; a previous file stays as it was.
        """
        from fastnet.serialization import save_net_arrays

        return save_net_arrays(self, path)

    def load_params(self: _N, path: PathLike = "params.npz") -> _N:
        """Read parameters and state written by :meth:`save_params` into this net.

        Returns
        -------
        Sequential
            The net itself.

        Raises
        ------
        CheckpointError
            When the file is missing, damaged or holds arrays that do not fit this net.
        """
        from fastnet.serialization import load_net_arrays

        load_net_arrays(self, path)
        return self

    def to(self: _N, backend: BackendLike) -> _N:
        """Move every layer, parameter and state (dropout random state included) to another backend."""
        backend = get_backend(backend)
        for layer in self._all_layers():
            if hasattr(layer, "to"):
                layer.to(backend)
        self.backend = backend
        return self

    def set_validation(self: _N, on: bool) -> _N:
        """Turn the checks that read input values (NaN/inf, labels) on or off for good;
        ``with net.trusted_inputs():`` turns them off for a block.  Returns the net."""
        self.validate_inputs = bool(on)
        return self

    def summary(self) -> str:
        """One line per layer with its parameter shapes, and the parameter count."""
        lines = [f"{type(self).__name__} on {self.backend.name} ({self.dtype})"]
        for name, layer in self.layers.items():
            lines.append(f"  {name:<14} {layer!r}")
        count = sum(int(numpy.prod(v.shape)) for v in self.params.values())
        lines.append(f"  {count:,} parameters")
        return "\n".join(lines)
