"""Checkpoints: parameters, optimizer state, position in the run, random state and config.

One ``.npz`` file written atomically; loading never unpickles anything.
"""
from __future__ import annotations

import numpy

from fastnet.errors import CheckpointError
from fastnet.serialization import check_net_arrays, load_arrays, net_host_arrays, save_arrays

OPTIM_PREFIX = "optim."
KIND = "checkpoint"


def dropout_layers(net):
    return {name: layer for name, layer in net.layers.items() if hasattr(layer, "rng")}


def rng_states(net) -> dict:
    """Host-side generator states (numpy Generators); device generators restart from their seed."""
    states = {}
    for name, layer in dropout_layers(net).items():
        if isinstance(layer.rng, numpy.random.Generator):
            states[name] = layer.rng.bit_generator.state
    return states


def save_checkpoint(path, net, optimizer, progress: dict, config: dict, history: dict):
    info, optim_arrays = optimizer.state_dict(net.backend.to_numpy)
    arrays = net_host_arrays(net)
    arrays.update({OPTIM_PREFIX + k: v for k, v in optim_arrays.items()})
    meta = {"kind": KIND, "net": type(net).__name__, "config": config, "progress": progress,
            "optimizer": info, "rng": rng_states(net), "history": history,
            "backend": net.backend.name}
    return save_arrays(path, arrays, meta)


def read_checkpoint(path):
    arrays, meta = load_arrays(path)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{path} holds parameters only, not a training checkpoint "
                              f"(load it with net.load_params)")
    return arrays, meta


def restore_checkpoint(net, optimizer, arrays, meta, path):
    """Put the checkpoint's state into a freshly built net and optimizer."""
    net_arrays = {k: v for k, v in arrays.items() if not k.startswith(OPTIM_PREFIX)}
    check_net_arrays(net, net_arrays, path)
    net.set_state_arrays(net_arrays)
    optim_arrays = {k[len(OPTIM_PREFIX):]: v for k, v in arrays.items() if k.startswith(OPTIM_PREFIX)}
    try:
        optimizer.load_state_dict(meta["optimizer"], optim_arrays, net.backend.asarray)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: optimizer state does not fit ({exc})") from None
    for name, layer in dropout_layers(net).items():
        state = meta.get("rng", {}).get(name)
        if state is not None and isinstance(layer.rng, numpy.random.Generator):
            layer.rng.bit_generator.state = state
