"""Checkpoints: parameters, optimizer state, position in the run, random state and config.

One ``.npz`` file written atomically; loading never unpickles anything, and everything read
back is checked before use, so a damaged or foreign file is refused with one clear line.
"""

from __future__ import annotations

import numpy

from fastnet.errors import CheckpointError, InputError
from fastnet.serialization import check_net_arrays, load_arrays, net_host_arrays, read_meta, save_arrays
from fastnet.training.checkpoint_schema import check_meta

OPTIM_PREFIX = "optim."
KIND = "checkpoint"


def layer_states(net) -> dict:
    """The net's state beyond arrays, for the metadata (dropout random state); arrays such as
    BatchNorm statistics travel in the file with the parameters."""
    states = {}
    for name, state in net.layer_state().items():
        kept = {key: value for key, value in state.items() if not isinstance(value, numpy.ndarray)}
        if kept:
            states[name] = kept
    return states


def save_checkpoint(path, net, optimizer, progress: dict, config: dict, history: dict):
    info, optim_arrays = optimizer.state_dict(net.backend.to_numpy)
    arrays = net_host_arrays(net)
    arrays.update({OPTIM_PREFIX + k: v for k, v in optim_arrays.items()})
    meta = {
        "kind": KIND,
        "net": type(net).__name__,
        "config": config,
        "progress": progress,
        "optimizer": info,
        "layer_state": layer_states(net),
        "history": history,
        "backend": net.backend.name,
    }
    return save_arrays(path, arrays, meta)


def read_checkpoint(path):
    """``(arrays, meta)`` of a training checkpoint whose metadata has the expected form.

    Reads every array the file holds (bounded by the file's own size); a command that builds
    the net first reads less with :func:`read_checkpoint_meta` and :func:`load_checkpoint_arrays`.
    """
    arrays, meta = load_arrays(path)
    _check_kind_and_meta(meta, path)
    return arrays, meta


def read_checkpoint_meta(path) -> dict:
    """Only the metadata, checked: enough to build the net and optimizer the arrays must fit."""
    meta = read_meta(path)
    _check_kind_and_meta(meta, path)
    return meta


def load_checkpoint_arrays(path, net, optimizer=None) -> dict:
    """The arrays of ``path``, each checked against ``net`` (and ``optimizer``'s slots) before any
    is read: a file can never make this allocate more than that net and optimizer hold.
    Without ``optimizer`` (evaluation) the optimizer state is not read at all."""
    expected = dict(net.state_arrays())
    if optimizer is not None:
        expected.update(
            {
                f"{OPTIM_PREFIX}{slot}.{key}": value
                for slot in getattr(optimizer, "slots", ())
                for key, value in net.params.items()
            }
        )
    skip = () if optimizer is not None else (OPTIM_PREFIX,)
    arrays, _ = load_arrays(path, expected=expected, skip=skip, owner=f"this {type(net).__name__}")
    return arrays


def _check_kind_and_meta(meta, path):
    if meta.get("kind") != KIND:
        raise CheckpointError(f"{path} holds parameters only, not a training checkpoint (load it with net.load_params)")
    check_meta(meta, path)


def checkpoint_config(meta, path):
    """The RunConfig a checkpoint was trained with, checked like command-line options."""
    from fastnet.training.config import RunConfig

    try:
        return RunConfig.from_record(meta["config"]).check()
    except (InputError, TypeError) as exc:
        raise CheckpointError(f"{path}: checkpoint configuration is not usable ({exc})") from None


def restore_checkpoint(net, optimizer, arrays, meta, path):
    """Put the checkpoint's state into a freshly built net and optimizer (checked first)."""
    net_arrays = {k: v for k, v in arrays.items() if not k.startswith(OPTIM_PREFIX)}
    check_net_arrays(net, net_arrays, path)
    optim_arrays = {k[len(OPTIM_PREFIX) :]: v for k, v in arrays.items() if k.startswith(OPTIM_PREFIX)}
    _check_optimizer_arrays(net, optimizer, optim_arrays, path)
    _restore_layer_states(net, _saved_layer_states(meta), path)
    try:
        optimizer.load_state_dict(meta["optimizer"], optim_arrays, net.backend.asarray)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path}: optimizer state does not fit ({exc})") from None
    net.set_state_arrays(net_arrays)


def _saved_layer_states(meta) -> dict:
    """``layer_state``, or the dropout generator states of a file written before it existed."""
    if "layer_state" in meta:
        return meta["layer_state"]
    return {name: {"rng": state} for name, state in meta.get("rng", {}).items()}


def _restore_layer_states(net, states, path):
    """All or nothing: a damaged state leaves every layer as it was."""
    before = net.layer_state()
    try:
        net.load_layer_state(states)
    except (InputError, TypeError, AttributeError) as exc:
        net.load_layer_state(before)
        raise CheckpointError(f"{path}: layer state is damaged ({exc})") from None


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
            raise CheckpointError(
                f"{path}: {name} state {key} has shape {tuple(value.shape)} "
                f"but parameter {param} has {tuple(net.params[param].shape)}"
            )
        if not numpy.isfinite(value).all():
            raise CheckpointError(f"{path}: {name} state {key} is not finite")
