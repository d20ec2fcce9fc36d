"""A net is an ordered container of layers: forward in order, backward in reverse."""

from __future__ import annotations

from collections import OrderedDict

import numpy

from fastnet.backends import get_backend
from fastnet.errors import InputError
from fastnet.layers import SoftmaxWithLoss
from fastnet.layers.protocol import declaration
from fastnet.nets.inference_plan import InferencePlan
from fastnet.nets.inputs import check_input_scale, check_net_input, label_name
from fastnet.nets.params import ParamDict
from fastnet.nets.state import NetStateAndModes
from fastnet.validation import ValueChecks, check_finite, check_labels


class Sequential(NetStateAndModes):
    """Layers assembled like Lego, with parameters addressed by name.

    >>> net = Sequential(backend="numpy")
    >>> net.add("Affine1", Affine(W1, b1), suffix="1")   # registers params W1, b1
    >>> net.add("Relu1", Relu())
    >>> net.add("Affine2", Affine(W2, b2), suffix="2")
    >>> net.set_loss(SoftmaxWithLoss())

    The net owns its state and its modes.  ``state_dict()`` holds everything that makes its
    numbers (parameters, BatchNorm statistics, dropout random state); ``layer_state()`` what
    the layers keep beyond their parameters.  The public methods check their
    arrays (NaN/inf, label range) unless inside ``with net.trusted_inputs():``, for data checked
    once with ``net.check_inputs``; ``with net.probe():`` runs a forward that leaves no trace.
    """

    def __init__(self, backend=None, dtype="float32", weight_decay_lambda=0.0, fuse=True):
        self.backend = get_backend(backend)
        self.dtype = numpy.dtype(dtype)
        if self.dtype.kind != "f":
            raise InputError(f"dtype must be a floating-point type such as float32; got {self.dtype}")
        self.layers = OrderedDict()
        self.set_loss(SoftmaxWithLoss(backend=self.backend))
        self.weight_decay_lambda = float(weight_decay_lambda)
        self.fuse = fuse
        self.validate_inputs = True
        self.last_loss = None
        self._param_index: dict[str, tuple] = {}
        self._declared: dict = {}  # layer name -> what it declares (fastnet.layers.protocol)
        self.params = ParamDict(self)

    # --- assembling -------------------------------------------------------------------------------
    def add(self, name, layer, suffix=None):
        """Append a layer; its parameters are registered as ``<param><suffix>`` (e.g. W1, b1).

        The layer joins the net's backend and dtype: float64 NumPy weights in a float32 net are
        converted here, once.
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

    def set_loss(self, layer):
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
    def input_layer(self):
        return next(iter(self.layers.values()))

    @property
    def output_size(self):
        for name, layer in reversed(self.layers.items()):
            size = layer.output_size() if self._declared[name].native else None
            if size is not None:
                return size
        raise InputError("the net has no layer that fixes its output size (an Affine or a Convolution)")

    # --- checks at the door ---------------------------------------------------------------------
    def check_inputs(self, x, t=None, name="x", t_name=None):
        """Check data once, reading every value whatever the mode; then train or predict on it
        inside ``with net.trusted_inputs():``.

        ``x``: floating point in the net's dtype, finite, and not so large that a gradient step
        overflows the dtype.  ``t`` (optional): labels or one-hot rows for ``x``, named
        ``t_name`` (default: ``name`` with its x changed to t).
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
        check_labels(self.backend, t, n, self.output_size, name, read_values=False)
        if self.validate_inputs:
            self.value_checks.labels(t, self.output_size, name)
        return t

    @property
    def value_checks(self) -> ValueChecks:
        """NaN/inf and label checks; on a GPU they wait on the device for ``raise_pending()``."""
        return ValueChecks.of(self)

    # --- the classic API -------------------------------------------------------------------------
    def predict(self, x, train_flg=False):
        pending = self._door(x)
        if train_flg:
            return self._forward(x, train_flg, *pending)
        plan = self._inference_plan()
        if not plan.has_passed(x):  # every layer checks the first input of each shape
            out = self._forward(x, False, *pending)
            plan.passed(x)
            return out
        try:
            return plan.run(x, pending)
        except InputError:
            raise
        except Exception:
            # A layer was changed since (a weight of another shape): the checked forward names it.
            plan.shapes_passed.clear()
            return self._forward(x, False, *pending)

    def _inference_plan(self) -> InferencePlan:
        plan = self.__dict__.get("_plan")
        if plan is None or plan.key != InferencePlan.key_of(self):
            plan = self.__dict__["_plan"] = InferencePlan(self)
        return plan

    def _forward(self, x, train_flg, pending=None):
        """Layer by layer, a fused pair (Affine+Relu, Conv+Relu) in one pass.

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

    def declared(self, name):
        """What the layer ``name`` declares (``fastnet.layers.protocol.Declaration``)."""
        return self._declared[name]

    def fused_forward(self, name, following):
        """The pass running layer ``name`` and the layer ``following`` it together, or None."""
        if not self.fuse:
            return None
        return self._declared[name].fused_forward(self.layers[name], self._declared[following].kind)

    def loss(self, x, t, train_flg=False):
        """Mean cross-entropy (plus 0.5 * lambda * sum W**2 when weight decay is on)."""
        y = self.predict(x, train_flg)
        self._check_t(t, x.shape[0])
        loss = self.lastLayer.forward(y, t)
        if self.weight_decay_lambda:
            loss = loss + 0.5 * self.weight_decay_lambda * sum((w * w).sum() for w in self._decayed_params())
        self.last_loss = loss
        return loss

    def _decayed_params(self):
        for layer in self.layers.values():
            for attr in getattr(layer, "decay_names", ()):
                yield getattr(layer, attr)

    def predict_batches(self, x, batch_size=1000):
        """Test-mode scores batch by batch, to bound memory: yields ``(rows, scores)``.

        ``x``'s structure is checked once, here; its values batch by batch as the batches run.
        """
        pending = self._door(x)
        return (
            (rows, self._forward(x[rows], False, *pending))
            for rows in (slice(start, start + batch_size) for start in range(0, x.shape[0], batch_size))
        )

    def predict_proba(self, x, batch_size=1000):
        """Class probabilities (softmax of the test-mode scores), one row per sample."""
        from fastnet.probabilities import softmax

        xp = self.backend.xp
        return xp.concatenate([softmax(xp, y) for _, y in self.predict_batches(x, batch_size)])

    def accuracy(self, x, t, batch_size=1000):
        """Fraction of correct predictions, computed in batches to bound memory."""
        batches = self.predict_batches(x, batch_size)
        self._check_t(t, x.shape[0])
        labels = t if t.ndim == 1 else t.argmax(axis=1)
        correct = 0
        for rows, y in batches:
            correct += (y.argmax(axis=1) == labels[rows]).sum()
        correct = float(correct)  # the device is read here anyway: its checks too
        self.value_checks.raise_pending()
        return correct / x.shape[0]

    def backward(self, dout=1):
        """Backpropagate from the loss; returns the input gradient when the first layer made one."""
        dout = self.lastLayer.backward(dout)
        for layer in reversed(self.layers.values()):
            dout = layer.backward(dout)
        return dout

    def gradient(self, x, t):
        """Gradients of the loss by backpropagation, keyed like ``params``.

        The loss of this very forward pass is kept in ``last_loss``: logging it needs no
        second forward pass.
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

    def numerical_gradient(self, x, t, h=1e-4, keys=None, indices=None):
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
    def state_arrays(self):
        """Every persistent array (parameters and layer state) by its stored name."""
        arrays = dict(self.params.items())
        for name, layer in self.layers.items():
            for attr in getattr(layer, "state_names", ()):
                arrays[f"{name}.{attr}"] = getattr(layer, attr)
        return arrays

    def set_state_arrays(self, arrays):
        """Copy host arrays into the net (shapes already checked by the caller)."""
        for key, value in arrays.items():
            if key in self._param_index:
                layer, attr = self._param_index[key]
            else:
                layer_name, attr = key.rsplit(".", 1)
                layer = self.layers[layer_name]
            current = getattr(layer, attr)
            current[...] = self.backend.asarray(value, dtype=current.dtype)

    def save_params(self, path="params.npz"):
        from fastnet.serialization import save_net_arrays

        return save_net_arrays(self, path)

    def load_params(self, path="params.npz"):
        from fastnet.serialization import load_net_arrays

        load_net_arrays(self, path)
        return self

    def to(self, backend):
        """Move every layer, parameter and state (dropout random state included) to another backend."""
        backend = get_backend(backend)
        for layer in self._all_layers():
            if hasattr(layer, "to"):
                layer.to(backend)
        self.backend = backend
        return self

    def set_validation(self, on: bool):
        self.validate_inputs = bool(on)
        return self

    def summary(self) -> str:
        lines = [f"{type(self).__name__} on {self.backend.name} ({self.dtype})"]
        for name, layer in self.layers.items():
            lines.append(f"  {name:<14} {layer!r}")
        count = sum(int(numpy.prod(v.shape)) for v in self.params.values())
        lines.append(f"  {count:,} parameters")
        return "\n".join(lines)
