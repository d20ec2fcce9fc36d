"""A net's forward with the per-layer input checks done once per input shape, in either mode.

Every layer checks its input (type, dtype, shape) because a layer can be called on its own.
Inside a net, a layer's input is the previous layer's output, so once an input of a given shape
and dtype has passed every layer's checks, the same chain of shapes follows for every later input
of that shape.  For one image those checks cost more than the arithmetic (microseconds per layer
against a few for a 784x50 product), so ``net.predict`` runs the checked forward the first time
it sees a shape and the layers' unchecked forwards after that.  A training step does the same:
its forward (``train_flg=True``, a shape passing in either mode counts for that mode only) and
the loss layer's.  The net's own checks at its door (structure, and values unless trusted, labels
included) still run on every call.  The unchecked forwards keep the same caches for a backward.

The plan also holds the backward's order: the layers in reverse, where a layer runs the backward
of the one before it with its own (a Pooling after a ReLU: ``Pooling.backward_relu``) as one call.
"""

from __future__ import annotations

from collections import OrderedDict

SHAPES_KEPT = 8  # distinct input shapes remembered per mode (a server sees one; a conv net a few sizes)
# Up to this many input values the input itself is value-checked (a few images: about a
# microsecond), so the first layer keeps its fused ReLU instead of running alone for its output check.
SMALL_INPUT = 4096


class InferencePlan:
    """The layers' forwards in order, fused pairs joined, with no input checks: test mode
    (``net.predict``) and training mode (``net.gradient``), each with the shapes it has seen pass."""

    def __init__(self, net):
        self.net = net
        self.key = self.key_of(net)
        # (sample shape, training) -> True; (sample shape, training, "loss") for the loss layer
        self.shapes_passed = OrderedDict()
        self._steps = {}  # (first layer alone (its output is value-checked), training) -> steps
        self._backward = None

    @staticmethod
    def key_of(net):
        """What the plan depends on: the layers themselves, the loss layer, fusion, backend and dtype."""
        return (tuple(map(id, net.layers.values())), id(net.lastLayer), net.fuse, id(net.backend), net.dtype)

    def steps(self, first_alone: bool, train: bool = False):
        steps = self._steps.get((first_alone, train))
        if steps is None:
            steps = self._steps[first_alone, train] = self._build(first_alone, train)
        return steps

    def _build(self, first_alone, train):
        net = self.net
        layers = list(net.layers.items())
        steps, i = [], 0
        while i < len(layers):
            name, layer = layers[i]
            declared = net.declared(name)
            alone = i + 1 == len(layers) or (i == 0 and first_alone) or not net.fuse
            kind = None if alone else net.declared(layers[i + 1][0]).kind
            if kind is not None and declared.fused_forward(layer, kind, True) is not None:
                steps.append(_late(layer, f"forward_{kind}_unchecked", layers[i + 1][1]))
                i += 2
                continue
            if declared.native:
                steps.append(declared.unchecked_forward(layer, train))
            else:
                steps.append(_late(layer, "forward", train) if declared.takes_train_flag else _late(layer, "forward"))
            i += 1
        return steps

    def backward_steps(self):
        """The backward, last layer first, a fused pair in one step (only when the net fuses)."""
        if self._backward is None:
            self._backward = self._build_backward()
        return self._backward

    def _build_backward(self):
        net = self.net
        layers = list(net.layers.items())
        steps, i = [], len(layers) - 1
        while i >= 0:
            name, layer = layers[i]
            if i > 0 and net.fuse:
                preceding_name, preceding = layers[i - 1]
                kind = net.declared(preceding_name).kind
                if net.declared(name).fused_backward(layer, kind) is not None:
                    steps.append(_late(layer, f"backward_{kind}", preceding))
                    i -= 2
                    continue
            steps.append(_late(layer, "backward"))
            i -= 1
        return steps

    def finite_first(self):
        """The first fused pair run with its finite flag (``forward_<kind>_unchecked_finite``), or
        None: then the first layer runs alone and its output is value-checked.  On the CPU only,
        where a flag is read at once; a GPU's value checks wait on the device."""
        if "finite" not in self._steps:
            self._steps["finite"] = self._build_finite_first()
        return self._steps["finite"]

    def _build_finite_first(self):
        net = self.net
        layers = list(net.layers.items())
        if len(layers) < 2 or not net.fuse or net.value_checks.deferred:
            return None
        (name, layer), (following_name, following) = layers[:2]
        kind = net.declared(following_name).kind
        if net.declared(name).fused_forward(layer, kind) is None:
            return None
        method = f"forward_{kind}_unchecked_finite"
        return _late(layer, method, following) if hasattr(layer, method) else None

    def has_passed(self, x, train: bool = False) -> bool:
        return (x.shape[1:], train) in self.shapes_passed

    def passed(self, x, train: bool = False):
        self.shapes_passed[x.shape[1:], train] = True
        self._forget_old()

    def _forget_old(self):
        while len(self.shapes_passed) > 4 * SHAPES_KEPT:  # both modes, the forward's and the loss's
            self.shapes_passed.popitem(last=False)

    def loss(self, x, y, t, train: bool = False):
        """The loss layer's forward on the scores ``y`` of ``x`` (labels ``t`` checked by the net):
        the layer checks them the first time for ``x``'s shape, and not after where it can."""
        layer = self.net.lastLayer
        unchecked = getattr(layer, "forward_unchecked", None)
        key = (x.shape[1:], train, "loss")
        if unchecked is not None and key in self.shapes_passed:
            return unchecked(y, t)
        loss = layer.forward(y, t)
        self.shapes_passed[key] = True
        self._forget_old()
        return loss

    def run(self, x, pending, train: bool = False):
        """The unchecked forward; ``pending`` as from the net's door (the first output's value check)."""
        if pending and x.size <= SMALL_INPUT:
            self.net.value_checks.finite(x, *pending[0])  # as cheap as the output's, and keeps the fusion
            pending = ()
        if pending and self.finite_first() is not None:
            out, finite = self.finite_first()(x)
            if not finite:  # NaN/inf in x, or x @ W + b overflowed: only the first is refused
                self.net.value_checks.finite(x, *pending[0])
            for step in self.steps(False, train)[1:]:
                out = step(out)
            return out
        steps = self.steps(bool(pending), train)
        x = steps[0](x)
        if pending:
            self.net.value_checks.finite(x, *pending[0])
        for step in steps[1:]:
            x = step(x)
        return x


def _late(layer, method, *extra):
    """``layer.<method>(x, *extra)``, looked up at each call: a wrapper set on the layer after
    the plan was made (the profiler's timer, ``fastnet.profiling.layer_timer``) is called."""
    return lambda x: getattr(layer, method)(x, *extra)
