"""Training-step throughput on the GPU: fastnet's cupy backend against PyTorch on CUDA.

The same three nets (TwoLayerNet 784-50-10, MLP 784-1000-1000-10, SimpleConvNet) start from
the same weights, in float32, with plain SGD.  One step is forward, loss, backward and update
on a batch already on the device.  The device is synchronised before every clock read;
each figure is the median over repeats taken after warm-up.  TF32 is switched off in PyTorch
so both sides compute in true float32 (CuPy does not use TF32 unless CUPY_TF32=1).

    python benchmarks/bench_gpu.py                      # JSON into $OUT or benchmarks/results/
    python benchmarks/bench_gpu.py --fastnet-backend numpy --torch-device cpu --quick   # smoke test
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastnet.backends import get_backend, unavailable_reason  # noqa: E402
from fastnet.nets import MultiLayerNet, SimpleConvNet, TwoLayerNet  # noqa: E402
from fastnet.optim import SGD  # noqa: E402

LR = 0.01
NETS = {
    "TwoLayerNet 784-50-10": (lambda be: TwoLayerNet(784, 50, 10, backend=be, seed=0), (784,)),
    "MLP 784-1000-1000-10": (lambda be: MultiLayerNet(784, [1000, 1000], 10, backend=be, seed=0), (784,)),
    "SimpleConvNet": (lambda be: SimpleConvNet(backend=be, seed=0), (1, 28, 28)),
}


def torch_copy(net, torch):
    """The fastnet net as a torch model with the very same weights."""
    nn = torch.nn
    layers = []
    for name, layer in net.layers.items():
        if name.startswith("Affine"):
            if any(isinstance(m, nn.Conv2d) for m in layers) and not any(isinstance(m, nn.Flatten) for m in layers):
                layers.append(nn.Flatten())  # fastnet's Affine flattens (N, C, H, W) itself
            W, b = (net.backend.to_numpy(a) for a in (layer.W, layer.b))
            lin = nn.Linear(*W.shape)
            lin.weight.data, lin.bias.data = torch.from_numpy(W.T.copy()), torch.from_numpy(b.copy())
            layers.append(lin)
        elif name.startswith("Conv"):
            W, b = (net.backend.to_numpy(a) for a in (layer.W, layer.b))
            conv = nn.Conv2d(W.shape[1], W.shape[0], W.shape[2:], stride=layer.stride, padding=layer.pad)
            conv.weight.data, conv.bias.data = torch.from_numpy(W.copy()), torch.from_numpy(b.copy())
            layers.append(conv)
        elif name.startswith(("Relu", "Activation")):
            layers.append(nn.ReLU())
        elif name.startswith("Pool"):
            layers.append(nn.MaxPool2d((layer.pool_h, layer.pool_w), layer.stride, layer.pad))
        else:
            raise ValueError(f"no torch counterpart for layer {name}")
    return nn.Sequential(*layers)


def time_steps(step, sync, warmup, repeats, steps):
    """Median seconds per step over ``repeats`` timed runs of ``steps`` steps."""
    for _ in range(warmup):
        step()
    sync()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        times.append((time.perf_counter() - start) / steps)
    return statistics.median(times)


def bench_fastnet(make, backend, x, t, args):
    net = make(backend)
    net.set_validation(False)  # a trainer validates the data once, not every step
    xd, td = backend.asarray(x), backend.asarray(t)
    optimizer = SGD(LR)
    first_loss = float(net.loss(xd, td))

    def step():
        optimizer.update(net.params, net.gradient(xd, td))

    return time_steps(step, backend.synchronize, args.warmup, args.repeats, args.steps), first_loss


def bench_torch(make, torch, device, x, t, args):
    model = torch_copy(make("numpy"), torch).to(device)
    xd, td = torch.from_numpy(x).to(device), torch.from_numpy(t).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loss_fn = torch.nn.functional.cross_entropy
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(xd), td).backward()
        optimizer.step()

    with torch.no_grad():
        first_loss = float(loss_fn(model(xd), td))
    return time_steps(step, sync, args.warmup, args.repeats, args.steps), first_loss


def load_torch(device):
    try:
        import torch
    except ImportError:
        return None, "PyTorch is not installed"
    if device == "cuda" and not torch.cuda.is_available():
        return None, "PyTorch cannot use CUDA here (torch.cuda.is_available() is False)"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    return torch, None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 1024])
    parser.add_argument("--nets", nargs="+", default=list(NETS), choices=list(NETS))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    parser.add_argument("--quick", action="store_true", help="1 warm-up, 2 repeats of 2 steps")
    parser.add_argument("--fastnet-backend", default="cupy")
    parser.add_argument("--torch-device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--out", default=os.environ.get("OUT") or str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup, args.repeats, args.steps = 1, 2, 2

    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / "bench_gpu.json"
    report = {"meta": {"fastnet_backend": args.fastnet_backend, "torch_device": args.torch_device,
                       "dtype": "float32", "optimizer": f"SGD(lr={LR})", "warmup": args.warmup,
                       "repeats": args.repeats, "steps_per_repeat": args.steps,
                       "python": platform.python_version(), "numpy": numpy.__version__},
              "results": []}

    reason = unavailable_reason(args.fastnet_backend)
    if reason is not None:
        report["skipped"] = f"backend {args.fastnet_backend} unavailable: {reason}"
        out_file.write_text(json.dumps(report, indent=2) + "\n")
        print(f"skipped: {report['skipped']}")
        return 0
    backend = get_backend(args.fastnet_backend)
    report["meta"]["fastnet_device"] = backend.describe()
    torch, torch_reason = load_torch(args.torch_device)
    if torch is None:
        report["meta"]["torch_skipped"] = torch_reason
        print(f"PyTorch part skipped: {torch_reason}")
    else:
        report["meta"]["torch"] = torch.__version__
        report["meta"]["torch_tf32"] = False

    print(f"fastnet: {backend.describe()}")
    header = f"{'net':<24}{'batch':>6}{'fastnet img/s':>15}{'torch img/s':>13}{'fastnet/torch':>15}"
    print(header)
    rng = numpy.random.default_rng(0)
    for net_name in args.nets:
        make, sample_shape = NETS[net_name]
        for batch in args.batches:
            x = rng.random((batch, *sample_shape), dtype=numpy.float32)
            t = rng.integers(0, 10, batch)
            fast_s, fast_loss = bench_fastnet(make, backend, x, t, args)
            row = {"net": net_name, "batch": batch, "fastnet_step_ms": fast_s * 1e3,
                   "fastnet_images_per_s": batch / fast_s, "fastnet_first_loss": fast_loss}
            if torch is not None:
                torch_s, torch_loss = bench_torch(make, torch, args.torch_device, x, t, args)
                row.update({"torch_step_ms": torch_s * 1e3, "torch_images_per_s": batch / torch_s,
                            "torch_first_loss": torch_loss,
                            "fastnet_over_torch_throughput": torch_s / fast_s})
            report["results"].append(row)
            torch_col = f"{row['torch_images_per_s']:>13,.0f}" if torch else f"{'-':>13}"
            ratio_col = f"{row['fastnet_over_torch_throughput']:>15.2f}" if torch else f"{'-':>15}"
            print(f"{net_name:<24}{batch:>6}{row['fastnet_images_per_s']:>15,.0f}{torch_col}{ratio_col}")
            out_file.write_text(json.dumps(report, indent=2) + "\n")  # partial results survive a timeout
    print(f"wrote {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
