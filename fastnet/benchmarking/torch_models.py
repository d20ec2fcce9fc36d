"""The same nets in PyTorch, built layer by layer from a fastnet net, with the very same weights.

On the CPU PyTorch keeps its default thread count (``torch.get_num_threads()``, recorded in the
results); on CUDA TF32 is switched off so both sides compute in true float32.
"""
from __future__ import annotations

from fastnet.benchmarking.workloads import LEARNING_RATE, Contender, Workload, make_data, make_fastnet_net

NOT_INSTALLED = "PyTorch is not installed (pip install torch)"


def torch_missing_reason(device="cpu"):
    """Why PyTorch cannot be a contender here, or None when it can."""
    try:
        import torch
    except ImportError:
        return NOT_INSTALLED
    if device == "cuda" and not torch.cuda.is_available():
        return "PyTorch cannot use CUDA here (torch.cuda.is_available() is False)"
    return None


def torch_twin(net, torch):
    """``net`` (any backend) as a torch ``nn.Sequential`` with copies of its weights."""
    nn = torch.nn
    modules = []
    for name, layer in net.layers.items():
        kind = type(layer).__name__
        if kind == "Affine":
            if any(isinstance(m, nn.Conv2d) for m in modules) and not any(isinstance(m, nn.Flatten) for m in modules):
                modules.append(nn.Flatten())  # fastnet's Affine flattens (N, C, H, W) itself
            W, b = (net.backend.to_numpy(a) for a in (layer.W, layer.b))
            linear = nn.Linear(*W.shape)
            linear.weight.data, linear.bias.data = torch.from_numpy(W.T.copy()), torch.from_numpy(b.copy())
            modules.append(linear)
        elif kind == "Convolution":
            W, b = (net.backend.to_numpy(a) for a in (layer.W, layer.b))
            conv = nn.Conv2d(W.shape[1], W.shape[0], W.shape[2:], stride=layer.stride, padding=layer.pad)
            conv.weight.data, conv.bias.data = torch.from_numpy(W.copy()), torch.from_numpy(b.copy())
            modules.append(conv)
        elif kind == "Relu":
            modules.append(nn.ReLU())
        elif kind == "Pooling":
            modules.append(nn.MaxPool2d((layer.pool_h, layer.pool_w), layer.stride, layer.pad))
        elif kind == "Dropout":
            modules.append(nn.Dropout(layer.dropout_ratio))
        else:
            raise ValueError(f"no torch counterpart for layer {name} ({kind})")
    return nn.Sequential(*modules)


def torch_contender(workload: Workload, device="cpu") -> Contender:
    import torch

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    model = torch_twin(make_fastnet_net(workload, "numpy"), torch).to(device)
    x, t = (torch.from_numpy(a).to(device) for a in make_data(workload))
    info = {"threads": f"torch.get_num_threads() = {torch.get_num_threads()}", "device": device}
    if not workload.train:
        model.eval()

        def infer():
            with torch.no_grad():
                model(x)
        return Contender(infer, sync, None, info)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), t).backward()
        optimizer.step()
    return Contender(step, sync, None, info)
