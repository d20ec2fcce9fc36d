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


def torch_twin(net):
    """``net`` (any backend) as a torch ``nn.Sequential`` with copies of its weights, in training
    mode (``fastnet.interop.to_torch``: the same layers the exports use)."""
    from fastnet.interop import to_torch

    return to_torch(net).train()


def torch_contender(workload: Workload, device="cpu") -> Contender:
    import torch

    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    model = torch_twin(make_fastnet_net(workload, "numpy")).to(device)
    x, t = (torch.from_numpy(a).to(device) for a in make_data(workload))
    info = {"threads": f"torch.get_num_threads() = {torch.get_num_threads()}", "device": device}
    if not workload.train:
        model.eval()

        def infer():
            with torch.inference_mode():  # PyTorch's fastest eager inference
                model(x)

        return Contender(infer, sync, None, info)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x), t).backward()
        optimizer.step()

    return Contender(step, sync, None, info)
