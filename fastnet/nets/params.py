"""A live view of a net's parameters, keyed by name ('W1', 'b1', 'gamma1', ...)."""

from collections.abc import MutableMapping

from fastnet.errors import InputError


class ParamDict(MutableMapping):
    """``net.params['W1']`` *is* the array the layer computes with.

    Reading returns the layer's array; assigning replaces it (shape checked).  In-place updates
    such as ``params[key] -= lr * grads[key]`` therefore train the net, as in the classic code.
    """

    def __init__(self, net):
        self._net = net

    @property
    def backend(self):
        return self._net.backend

    def __getitem__(self, key):
        layer, attr = self._net._param_index[key]
        return getattr(layer, attr)

    def __setitem__(self, key, value):
        if key not in self._net._param_index:
            raise KeyError(key)
        layer, attr = self._net._param_index[key]
        old = getattr(layer, attr)
        if value is not old:
            if tuple(value.shape) != tuple(old.shape):
                raise InputError(f"parameter {key} has shape {tuple(old.shape)}; got {tuple(value.shape)}")
            self._net.backend.check_array(value, f"params[{key!r}]")
            setattr(layer, attr, value)

    def __delitem__(self, key):
        raise TypeError("a net's parameters cannot be deleted")

    def __iter__(self):
        return iter(self._net._param_index)

    def __len__(self):
        return len(self._net._param_index)

    def __repr__(self):
        return "{" + ", ".join(f"{k!r}: {tuple(v.shape)}" for k, v in self.items()) + "}"
