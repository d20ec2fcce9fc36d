"""What a layer declares, read by everything that handles layers without knowing them.

A fastnet layer declares on its class: ``kind`` (a short name: "affine", "conv", "pool",
"relu", "batchnorm", "dropout", ...), its trained ``param_names`` with their ``grad_names``,
its ``state_names`` (buffers: arrays kept without training, such as BatchNorm's running
statistics), its ``decay_names``, whether ``forward`` takes ``train_flg``, and ``fuses_with``:
the kinds of a following layer it can run in the same pass (``forward_<kind>(x, that_layer)``,
e.g. ``Affine.forward_relu``), and ``fuses_backward_with``: the kinds of a preceding layer whose
backward it can run with its own (``backward_<kind>(dout, that_layer)``, e.g.
``Pooling.backward_relu``).  A layer may also offer ``forward_unchecked`` (and
``forward_<kind>_unchecked``): its forward without the input checks, which the net's forward
(in test and in training mode) uses once an input of that shape has passed them.  The net, the
profiler and the parity check read ``declaration(layer)`` and nothing else.

A book-style layer of the user's own (any object with ``forward``/``backward``) declares
nothing: it is taken as it is, kind "foreign", no registered parameters, and this is the one
place that looks at its ``forward`` to learn whether it takes ``train_flg``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

FOREIGN = "foreign"


@dataclass(frozen=True)
class Declaration:
    kind: str
    params: tuple = ()
    grads: tuple = ()  # (parameter, its gradient's attribute) pairs
    buffers: tuple = ()
    decay: tuple = ()
    takes_train_flag: bool = False
    fuses_with: tuple = ()
    fuses_backward_with: tuple = ()
    native: bool = True  # a fastnet Layer (backend, dtype, validation, state_dict)

    def fused_forward(self, layer: Any, following_kind: str, unchecked: bool = False) -> Callable | None:
        """The method running ``layer`` and a following layer of that kind in one pass, or None.

        ``unchecked``: the variant without the input checks (``forward_<kind>_unchecked``), for an
        input whose shape and dtype the net has already seen pass them."""
        if following_kind not in self.fuses_with:
            return None
        return getattr(layer, f"forward_{following_kind}" + ("_unchecked" if unchecked else ""))

    def fused_backward(self, layer: Any, preceding_kind: str) -> Callable | None:
        """The method running the backward of ``layer`` and of a preceding layer of that kind in
        one pass (``backward_<kind>(dout, preceding)``), or None."""
        if preceding_kind not in self.fuses_backward_with:
            return None
        return getattr(layer, f"backward_{preceding_kind}")

    def unchecked_forward(self, layer: Any, train_flg: bool = False) -> Callable:
        """``layer``'s forward (test mode, or training mode with ``train_flg``) without its input
        checks where it has one (else with them).  The method is looked up at each call, so that
        a wrapper set on the layer afterwards (the profiler's timer) is the one called."""
        name = "forward_unchecked" if hasattr(layer, "forward_unchecked") else "forward"
        if self.takes_train_flag:
            return lambda x: getattr(layer, name)(x, train_flg)
        return lambda x: getattr(layer, name)(x)


def declaration(layer) -> Declaration:
    from fastnet.layers.base import Layer

    if isinstance(layer, Layer):
        cls = type(layer)
        return Declaration(
            cls.kind,
            tuple(cls.param_names),
            tuple(cls.grad_names.items()),
            tuple(cls.state_names),
            tuple(cls.decay_names),
            bool(cls.takes_train_flag),
            tuple(cls.fuses_with),
            tuple(cls.fuses_backward_with),
        )
    return Declaration(
        FOREIGN, takes_train_flag="train_flg" in inspect.signature(layer.forward).parameters, native=False
    )
