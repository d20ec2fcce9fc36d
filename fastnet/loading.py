"""``fastnet.load``: the net of any fastnet file, built from the file's metadata first.

A training checkpoint (``checkpoint.npz``, ``best.npz``) names its run configuration: the net is
built from it as ``fastnet eval`` does, and only arrays that fit it are read.  A parameter file
(``net.save_params``) carries a description of its layers; files from before that description
existed are rebuilt from their array shapes for the three classic nets.  A ``.safetensors`` file
(``fastnet export --format safetensors``) carries the same description in its header.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fastnet.annotations import BackendLike, PathLike
from fastnet.errors import CheckpointError, InputError

if TYPE_CHECKING:
    from fastnet.nets import Sequential

IMAGE_SIDE = 28  # every data set fastnet trains on has 28x28 images


@dataclass
class Loaded:
    """A loaded net and what its file says about the data it was trained on."""

    net: Sequential
    dataset: str  # "mnist" or "fashion-mnist": how to prepare images for it
    classes: tuple
    kind: str  # "checkpoint", "params" or "safetensors"
    epoch: int | None = None


def load(path: PathLike, backend: BackendLike = None) -> Sequential:
    """The net saved in ``path`` (checkpoint, best.npz, parameter file or .safetensors), on
    ``backend`` (a name or backend object; default: the default backend), in test mode.

    Parameters
    ----------
    path : str or os.PathLike
        A training checkpoint (``checkpoint.npz``, ``best.npz``), a parameter file written by
        ``net.save_params`` or a ``.safetensors`` file written by ``fastnet export``.
    backend : Backend, str or None
        Where the net computes; None for the default backend.

    Returns
    -------
    Sequential
        The net, built from the file's description of its layers, with its parameters and state.

    Raises
    ------
    CheckpointError
        When the file is missing, damaged or not a fastnet file.

    Examples
    --------
    >>> import os, tempfile, numpy
    >>> import fastnet
    >>> from fastnet.nets import TwoLayerNet
    >>> net = TwoLayerNet(784, 50, 10, backend="numpy", seed=0)
    >>> path = os.path.join(tempfile.mkdtemp(), "net.npz")
    >>> _ = net.save_params(path)
    >>> again = fastnet.load(path, backend="numpy")
    >>> bool((again.params["W1"] == net.params["W1"]).all())
    True
    """
    return load_with_info(path, backend).net


def load_with_info(path: PathLike, backend: BackendLike = None) -> Loaded:
    """Like :func:`load`, with what the file says about the data the net was trained on."""
    from fastnet.backends import get_backend

    backend = get_backend(backend)
    if str(path).endswith(".safetensors"):
        from fastnet.interop.safetensors_io import load_safetensors

        return load_safetensors(path, backend)
    from fastnet.serialization import read_meta

    meta = read_meta(path)
    if meta.get("kind") == "checkpoint":
        return _load_checkpoint(path, backend)
    return _load_params(path, meta, backend)


def _load_checkpoint(path, backend) -> Loaded:
    from fastnet.cli.common import read_run
    from fastnet.training import build_net
    from fastnet.training.checkpoint import load_checkpoint_arrays, restore_net

    meta, config = read_run(path)
    shape = (IMAGE_SIDE * IMAGE_SIDE,) if config.flatten else (1, IMAGE_SIDE, IMAGE_SIDE)
    net = build_net(config, backend, shape)
    restore_net(net, load_checkpoint_arrays(path, net), path)
    dataset = "fashion-mnist" if config.dataset == "fashion-mnist" else "mnist"
    return Loaded(net, dataset, class_names(dataset), "checkpoint", meta["progress"].get("epoch"))


def _load_params(path, meta, backend) -> Loaded:
    from fastnet.serialization import load_net_arrays

    net = net_from_meta(meta, path, backend)
    load_net_arrays(net, path)
    dataset = meta.get("dataset") if meta.get("dataset") in ("mnist", "fashion-mnist") else "mnist"
    return Loaded(net, dataset, class_names(dataset), "params")


def net_from_meta(meta, path, backend):
    """An empty net of the layout ``meta`` (a parameter file's metadata) describes."""
    from fastnet.interop.spec import build_from_spec

    shapes = meta.get("shapes")
    dtype = meta.get("dtype", "float32")
    if dtype not in ("float32", "float64"):
        raise CheckpointError(f"{path}: unknown dtype {dtype!r} in its metadata")
    if not isinstance(shapes, dict) or not all(
        isinstance(s, list) and all(isinstance(d, int) and 0 < d < 1 << 31 for d in s) for s in shapes.values()
    ):
        raise CheckpointError(
            f"{path} describes no net (no array shapes); build the net and call net.load_params({str(path)!r})"
        )
    try:
        if "layers" in meta:
            return build_from_spec(meta["layers"], shapes, backend, dtype)
        return _classic_from_shapes(meta.get("net"), shapes, backend, dtype)
    except InputError as exc:
        raise CheckpointError(f"{path}: {exc}") from None


def _classic_from_shapes(name, shapes, backend, dtype):
    """Files saved before layer descriptions existed: the classic nets, from their shapes."""
    from fastnet.nets import DeepConvNet, SimpleConvNet, TwoLayerNet

    def shape(key):
        if key not in shapes:
            raise InputError(f"a {name} file must hold {key}")
        return shapes[key]

    if name == "TwoLayerNet":
        (inputs, hidden), (_, outputs) = shape("W1"), shape("W2")
        return TwoLayerNet(inputs, hidden, outputs, backend=backend, dtype=dtype)
    if name == "SimpleConvNet":
        filters, channels, size, _ = shape("W1")
        conv = {"filter_num": filters, "filter_size": size, "pad": 0, "stride": 1}
        return SimpleConvNet(
            (channels, IMAGE_SIDE, IMAGE_SIDE),
            conv,
            hidden_size=shape("W2")[1],
            output_size=shape("W3")[1],
            backend=backend,
            dtype=dtype,
        )
    if name == "DeepConvNet":
        return DeepConvNet(
            (shape("W1")[1], IMAGE_SIDE, IMAGE_SIDE),
            output_size=shape("W8")[1],
            hidden_size=shape("W7")[1],
            backend=backend,
            dtype=dtype,
        )
    raise InputError(f"the file holds a {name} without a layer description; build the net and call net.load_params")


def class_names(dataset) -> tuple:
    from fastnet.datasets.catalog import SPECS

    return tuple(SPECS[dataset].classes)


def describe(loaded: Loaded, path) -> str:
    epoch = f", epoch {loaded.epoch}" if loaded.epoch is not None else ""
    return f"{Path(path).name}: {type(loaded.net).__name__} for {loaded.dataset}{epoch}"
