"""safetensors files: the net's arrays (parameters and BatchNorm statistics) by name, and in the
header's metadata the layer description that rebuilds the net (``fastnet.load`` reads it back).

Reading never runs code (the format holds only tensors and strings) and checks every tensor's
name, shape and dtype against the description before any tensor is read.
"""

from __future__ import annotations

import json

import numpy

from fastnet.errors import CheckpointError

FORMAT = "fastnet-safetensors"


def save_safetensors(net, path, dataset="mnist"):
    from safetensors.numpy import save

    from fastnet.atomic import atomic_write
    from fastnet.interop.spec import describe_layers, spec_shapes

    info = {
        "format": FORMAT,
        "version": 1,
        "net": type(net).__name__,
        "dtype": str(net.dtype),
        "dataset": dataset,
        "layers": describe_layers(net),
        "shapes": spec_shapes(net),
    }
    tensors = {key: numpy.ascontiguousarray(net.backend.to_numpy(value)) for key, value in net.state_arrays().items()}
    data = save(tensors, metadata={"fastnet": json.dumps(info)})
    return atomic_write(path, lambda f: f.write(data))


def load_safetensors(path, backend=None):
    from fastnet.loading import Loaded, class_names, net_from_meta

    try:
        from safetensors import SafetensorError, safe_open
    except ImportError:
        raise CheckpointError(
            f"{path}: reading safetensors needs the safetensors package (pip install 'fastnet[export]')"
        ) from None
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = _fastnet_meta(f.metadata(), path)
            net = net_from_meta(meta, path, backend)
            expected = net.state_arrays()
            names = set(f.keys())
            if names != set(expected):
                missing, extra = sorted(set(expected) - names), sorted(names - set(expected))
                raise CheckpointError(
                    f"{path} does not match its own description (missing {missing[:5]}, unexpected {extra[:5]})"
                )
            for key, value in expected.items():
                found = f.get_slice(key)
                if tuple(found.get_shape()) != tuple(value.shape) or found.get_dtype() not in ("F32", "F64"):
                    raise CheckpointError(
                        f"{path}: tensor {key} is {found.get_dtype()} {found.get_shape()}; "
                        f"the net needs float {list(value.shape)}"
                    )
            arrays = {key: f.get_tensor(key) for key in expected}
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no such file") from None
    except SafetensorError as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})") from None
    for key, value in arrays.items():
        if not numpy.isfinite(value).all():
            raise CheckpointError(f"{path}: tensor {key} is not finite")
    net.set_state_arrays(arrays)
    dataset = "fashion-mnist" if meta.get("dataset") == "fashion-mnist" else "mnist"
    return Loaded(net, dataset, class_names(dataset), "safetensors")


def _fastnet_meta(metadata, path) -> dict:
    try:
        meta = json.loads((metadata or {})["fastnet"])
    except (KeyError, TypeError, json.JSONDecodeError):
        raise CheckpointError(
            f"{path} holds no fastnet description; it was not written by "
            f"fastnet export (load the tensors with safetensors and build the net)"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} holds an unknown fastnet description")
    return meta
