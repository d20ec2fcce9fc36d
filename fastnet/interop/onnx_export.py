"""A net as an ONNX graph (opset 17), computing what fastnet computes in test mode.

Two outputs: ``scores`` (what ``net.predict`` returns) and ``probabilities`` (``predict_proba``).
Dropout becomes a multiplication by (1 - ratio), fastnet's test-time scaling (an Identity would
leave a net trained with dropout off by that factor), and BatchNormalization keeps fastnet's
epsilon.  The batch dimension is free; a convolutional net also takes any image size its layers fit.
"""

from __future__ import annotations

import numpy

from fastnet.interop.spec import SETTINGS, unsupported

OPSET = 17


def check_exportable(net):
    foreign = [
        (name, type(layer).__name__) for name, layer in net.layers.items() if type(layer).__name__ not in SETTINGS
    ]
    if foreign:
        raise unsupported(foreign, "ONNX export")


def to_onnx(net, graph_name="fastnet"):
    """The ``onnx.ModelProto`` of ``net`` (needs the onnx package: pip install 'fastnet[onnx]')."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    check_exportable(net)
    elem = TensorProto.DOUBLE if net.dtype == numpy.float64 else TensorProto.FLOAT
    host = net.backend.to_numpy
    nodes, weights = [], []
    first = net.input_layer
    if getattr(first, "W", None) is not None and first.W.ndim == 4:
        input_shape = ["N", int(first.W.shape[1]), "H", "W"]
    elif getattr(first, "W", None) is not None:
        input_shape = ["N", int(first.W.shape[0])]
    else:
        raise unsupported(
            [(next(iter(net.layers)), type(first).__name__)],
            "ONNX export (the first layer must be an Affine or a Convolution, which fix the input size)",
        )
    ndim = len(input_shape)
    current = "x"

    def weight(name, value):
        weights.append(numpy_helper.from_array(numpy.ascontiguousarray(host(value), dtype=net.dtype), name))
        return name

    def node(op, inputs, name, **attrs):
        nonlocal current
        nodes.append(helper.make_node(op, inputs, [name], name=name, **attrs))
        current = name

    for name, layer in net.layers.items():
        kind = type(layer).__name__
        if kind == "Affine":
            if ndim != 2:
                node("Flatten", [current], f"{name}_flat", axis=1)  # fastnet's Affine flattens (N, C, H, W)
                ndim = 2
            node("Gemm", [current, weight(f"{name}.W", layer.W), weight(f"{name}.b", layer.b)], name)
        elif kind == "Convolution":
            p, s = int(layer.pad), int(layer.stride)
            node(
                "Conv",
                [current, weight(f"{name}.W", layer.W), weight(f"{name}.b", layer.b)],
                name,
                pads=[p, p, p, p],
                strides=[s, s],
            )
        elif kind == "Pooling":
            p = int(layer.pad)
            node(
                "MaxPool",
                [current],
                name,
                kernel_shape=[int(layer.pool_h), int(layer.pool_w)],
                strides=[int(layer.stride)] * 2,
                pads=[p, p, p, p],
            )
        elif kind == "Relu":
            node("Relu", [current], name)
        elif kind == "Sigmoid":
            node("Sigmoid", [current], name)
        elif kind == "Dropout":
            keep = numpy.array(1.0 - layer.dropout_ratio, dtype=net.dtype)
            node("Mul", [current, weight(f"{name}.keep", keep)], name)
        elif kind == "BatchNormalization":
            node(
                "BatchNormalization",
                [
                    current,
                    weight(f"{name}.gamma", layer.gamma),
                    weight(f"{name}.beta", layer.beta),
                    weight(f"{name}.running_mean", layer.running_mean),
                    weight(f"{name}.running_var", layer.running_var),
                ],
                name,
                epsilon=float(layer.eps),
            )
    nodes.append(helper.make_node("Identity", [current], ["scores"], name="scores"))
    nodes.append(helper.make_node("Softmax", ["scores"], ["probabilities"], name="probabilities", axis=1))
    outputs = net.output_size
    graph = helper.make_graph(
        nodes,
        graph_name,
        [helper.make_tensor_value_info("x", elem, input_shape)],
        [
            helper.make_tensor_value_info("scores", elem, ["N", outputs]),
            helper.make_tensor_value_info("probabilities", elem, ["N", outputs]),
        ],
        initializer=weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="fastnet")
    model.ir_version = min(model.ir_version, 9)  # readable by onnxruntime releases of the last years
    onnx.checker.check_model(model)
    return model


def save_onnx(net, path):
    from fastnet.atomic import atomic_write

    data = to_onnx(net).SerializeToString()
    return atomic_write(path, lambda f: f.write(data))
