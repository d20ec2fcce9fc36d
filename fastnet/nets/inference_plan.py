"""A net's test-mode forward with the per-layer input checks done once per input shape.

Every layer checks its input (type, dtype, shape) because a layer can be called on its own.
Inside a net, a layer's input is the previous layer's output, so once an input of a given shape
and dtype has passed every layer's checks, the same chain of shapes follows for every later input
of that shape.  For one image those checks cost more than the arithmetic (microseconds per layer
against a few for a 784x50 product), so ``net.predict`` runs the checked forward the first time
it sees a shape and the layers' unchecked forwards after that.  The net's own checks at its door
(structure, and values unless trusted) still run on every call.
"""

from __future__ import annotations

from collections import OrderedDict

SHAPES_KEPT = 8  # distinct input shapes remembered (a server sees one; a conv net a few sizes)
# Up to this many input values the input itself is value-checked (a few images: about a
# microsecond), so the first layer keeps its fused ReLU instead of running alone for its output check.
SMALL_INPUT = 4096


class InferencePlan:
    """The layers' test-mode forwards in order, fused pairs joined, with no input checks."""

    def __init__(self, net):
        self.net = net
        self.key = self.key_of(net)
        self.shapes_passed = OrderedDict()
        self._steps = {}  # first layer alone (its output is value-checked) or fused -> steps

    @staticmethod
    def key_of(net):
        """What the plan depends on: the layers themselves, fusion, backend and dtype."""
        return (tuple(map(id, net.layers.values())), net.fuse, id(net.backend), net.dtype)

    def steps(self, first_alone: bool):
        steps = self._steps.get(first_alone)
        if steps is None:
            steps = self._steps[first_alone] = self._build(first_alone)
        return steps

    def _build(self, first_alone):
        net = self.net
        layers = list(net.layers.items())
        steps, i = [], 0
        while i < len(layers):
            name, layer = layers[i]
            declared = net.declared(name)
            alone = i + 1 == len(layers) or (i == 0 and first_alone) or not net.fuse
            fused = None if alone else declared.fused_forward(layer, net.declared(layers[i + 1][0]).kind, True)
            if fused is not None:
                following = layers[i + 1][1]
                steps.append(lambda x, fused=fused, following=following: fused(x, following))
                i += 2
                continue
            steps.append(declared.unchecked_forward(layer) if declared.native else _test_mode(layer, declared))
            i += 1
        return steps

    def has_passed(self, x) -> bool:
        return x.shape[1:] in self.shapes_passed

    def passed(self, x):
        self.shapes_passed[x.shape[1:]] = True
        while len(self.shapes_passed) > SHAPES_KEPT:
            self.shapes_passed.popitem(last=False)

    def run(self, x, pending):
        """The unchecked forward; ``pending`` as from the net's door (the first output's value check)."""
        if pending and x.size <= SMALL_INPUT:
            self.net.value_checks.finite(x, *pending[0])  # as cheap as the output's, and keeps the fusion
            pending = ()
        steps = self.steps(bool(pending))
        x = steps[0](x)
        if pending:
            self.net.value_checks.finite(x, *pending[0])
        for step in steps[1:]:
            x = step(x)
        return x


def _test_mode(layer, declared):
    return (lambda x: layer.forward(x, False)) if declared.takes_train_flag else layer.forward
