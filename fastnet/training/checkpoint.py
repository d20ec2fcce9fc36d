"""Checkpoints: parameters, optimizer state, position in the run, random state and config.

One ``.npz`` file written atomically; loading never unpickles anything, and everything read
back is checked before use, so a damaged or foreign file is refused with one clear line.
"""
from __future__ import annotations

import numpy

from fastnet.errors import CheckpointError, InputError
from fastnet.serialization import check_net_arrays, load_arrays, net_host_arrays, save_arrays
from fastnet.training.checkpoint_schema import check_meta

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
    """``(arrays, meta)`` of a training checkpoint whose metadata has the expected form."""
    arrays, meta = load_arrays(path)
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{path} holds parameters only, not a training checkpoint "
                              f"(load it with net.load_params)")
    check_meta(meta, path)
    return arrays, meta


def checkpoint_config(meta, path):
    """The RunConfig a checkpoint was trained with, checked like command-line options."""
    from fastnet.training.config import RunConfig

    try:
        return RunConfig.from_dict(meta["config"]).check()
    except (InputError, TypeError) as exc:
        raise CheckpointError(f"{path}: checkpoint configuration is not usable ({exc})") from None


def restore_checkpoint(net, optimizer, arrays, meta, path):
    """Put the checkpoint's state into a freshly built net and optimizer (checked first)."""
    net_arrays = {k: v for k, v in arrays.items() if not k.startswith(OPTIM_PREFIX)}
    check_net_arrays(net, net_arrays, path)
    optim_arrays = {k[len(OPTIM_PREFIX):]: v for k, v in arrays.items() if k.startswith(OPTIM_PREFIX)}
    _check_optimizer_arrays(net, optimizer, optim_arrays, path)
    states = meta.get("rng", {})
    generators = {name: layer.rng for name, layer in dropout_layers(net).items()
                  if isinstance(layer.rng, numpy.random.Generator) and name in states}
    saved = {name: rng.bit_generator.state for name, rng in generators.items()}
    try:
        for name, rng in generators.items():
            rng.bit_generator.state = states[name]
    except (TypeError, ValueError, KeyError) as exc:
        for name, rng in generators.items():
            rng.bit_generator.state = saved[name]
        raise CheckpointError(f"{path}: dropout random state is damaged ({exc})") from None
    try:
        optimizer.load_state_dict(meta["optimizer"], optim_arrays, net.backend.asarray)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: optimizer state does not fit ({exc})") from None
    net.set_state_arrays(net_arrays)


def restore_net(net, arrays, path):
    """Only the net's arrays (parameters and layer state), for evaluation."""
    net_arrays = {k: v for k, v in arrays.items() if not k.startswith(OPTIM_PREFIX)}
    check_net_arrays(net, net_arrays, path)
    net.set_state_arrays(net_arrays)


def _check_optimizer_arrays(net, optimizer, optim_arrays, path):
    """Each slot array must match its parameter's shape: a mismatch would fail steps later."""
    name = type(optimizer).__name__
    for key, value in optim_arrays.items():
        slot, _, param = key.partition(".")
        if slot not in getattr(optimizer, "slots", ()) or param not in net.params:
            continue  # load_state_dict decides about foreign slots
        if tuple(value.shape) != tuple(net.params[param].shape) or value.dtype.kind != "f":
            raise CheckpointError(f"{path}: {name} state {key} has shape {tuple(value.shape)} "
                                  f"but parameter {param} has {tuple(net.params[param].shape)}")
        if not numpy.isfinite(value).all():
            raise CheckpointError(f"{path}: {name} state {key} is not finite")
