"""Training-step throughput on the GPU: fastnet's cupy backend against PyTorch on CUDA.

The same harness as ``fastnet bench`` (fastnet.benchmarking: workloads, PyTorch twins with the
same weights, interleaved timing), with the device synchronised before every clock read.
Each figure is the median over repeats taken after warm-up; TF32 is off in PyTorch so both
sides compute in true float32 (CuPy does not use TF32 unless CUPY_TF32=1).  After timing, each
net trains a few SGD steps from the same weights on the same batch in both, and the losses are
compared (dropout off on both sides: their random masks differ).

Exit status: 0 only when every workload was measured against PyTorch and every loss agreed;
1 when something was not measured or disagreed (the JSON says what); 2 for bad arguments.

    python3 benchmarks/bench_gpu.py                     # JSON and plot into $OUT or benchmarks/results/
    python3 benchmarks/bench_gpu.py --fastnet-backend numpy --torch-device cpu --quick --nets two-layer
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy  # noqa: E402

from fastnet.backends import get_backend, unavailable_reason  # noqa: E402
from fastnet.benchmarking import run_benchmarks  # noqa: E402
from fastnet.benchmarking.report import save_json, save_plot  # noqa: E402
from fastnet.benchmarking.runner import TORCH  # noqa: E402
from fastnet.benchmarking.workloads import LEARNING_RATE, NETS, make_data, step_workload  # noqa: E402

DEFAULT_NETS = ("two-layer", "wide-mlp", "simple-conv", "deep-conv")
LOSS_STEPS = 5
# float32 sums in another order differ by ~1e-6 relative per step; a few steps of SGD keep the
# loss within 1e-3 (tests/test_gpu.py holds 16 steps to that bound), a wrong kernel by far more.
LOSS_RTOL = 1e-3
JSON_NAME = "bench_gpu.json"


def compare_losses(workload, backend_name, torch_device, steps=LOSS_STEPS):
    """The losses of ``steps`` SGD steps, fastnet against PyTorch, from the same weights and batch."""
    import torch

    from fastnet.benchmarking.torch_models import torch_twin
    from fastnet.layers import Dropout
    from fastnet.optim import SGD

    backend = get_backend(backend_name)
    net = NETS[workload.net][0](backend)
    for layer in net.layers.values():
        if isinstance(layer, Dropout):
            layer.dropout_ratio = 0.0
    model = torch_twin(net).to(torch_device)
    x, t = make_data(workload)
    xd, td = backend.asarray(x), backend.asarray(t)
    xt, tt = (torch.from_numpy(a).to(torch_device) for a in (x, t))
    optimizer, torch_optimizer = SGD(lr=LEARNING_RATE), torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    ours, theirs = [], []
    for _ in range(steps):
        optimizer.update(net.params, net.gradient(xd, td))
        ours.append(float(net.last_loss))
        torch_optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(xt), tt)
        loss.backward()
        torch_optimizer.step()
        theirs.append(float(loss.detach()))
    worst = max(abs(a - b) / max(abs(b), 1e-12) for a, b in zip(ours, theirs, strict=True))
    return {
        "steps": steps,
        "fastnet": ours,
        "pytorch": theirs,
        "max_relative_difference": worst,
        "rtol": LOSS_RTOL,
        "agree": bool(numpy.isfinite(worst) and worst <= LOSS_RTOL),
    }


def _problems(result, wanted):
    """What keeps this run from being a complete GPU comparison, one line each."""
    by_reason = {}
    for name, why in result["not_measured"].items():
        by_reason.setdefault(why, []).append(name)
    problems = [f"{', '.join(names)}: not measured ({why})" for why, names in by_reason.items()]
    for name, entry in result["workloads"].items():
        if TORCH not in entry["results"]:
            problems.append(f"{name}: no PyTorch figure ({result['missing_contenders'].get(TORCH, 'unknown')})")
        agreement = entry.get("loss_agreement")
        if agreement is None:
            problems.append(f"{name}: losses not compared")
        elif not agreement["agree"]:
            problems.append(
                f"{name}: losses differ from PyTorch's by {agreement['max_relative_difference']:.2e} "
                f"(allowed {LOSS_RTOL:g})"
            )
    missing = [w for w in wanted if w not in result["workloads"] and w not in result["not_measured"]]
    problems += [f"{name}: not measured" for name in missing]
    return problems


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 1024])
    parser.add_argument("--nets", nargs="+", default=list(DEFAULT_NETS), choices=list(NETS))
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    parser.add_argument("--quick", action="store_true", help="1 warm-up, 2 repeats of 2 steps")
    parser.add_argument("--fastnet-backend", default="cupy")
    parser.add_argument("--torch-device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument(
        "--deadline",
        type=float,
        default=None,
        help="seconds; workloads not started by then are reported as not measured",
    )
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--out", default=os.environ.get("OUT") or str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup, args.repeats, args.steps = 1, 2, 2
    started = time.monotonic()
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    workloads = [step_workload(net, batch) for net in args.nets for batch in args.batches]
    result = {
        "fastnet_backend": args.fastnet_backend,
        "torch_device": args.torch_device,
        "workloads": {},
        "not_measured": {},
        "missing_contenders": {},
    }

    reason = unavailable_reason(args.fastnet_backend)
    if reason is not None:
        result["not_measured"] = {w.name: f"backend {args.fastnet_backend} unavailable: {reason}" for w in workloads}
        print(f"bench_gpu: nothing measured: backend {args.fastnet_backend} unavailable: {reason}")
    else:
        print(f"fastnet: {get_backend(args.fastnet_backend).describe()}")
    for workload in workloads if reason is None else ():
        if args.deadline is not None and time.monotonic() - started > args.deadline:
            result["not_measured"][workload.name] = f"out of time (--deadline {args.deadline:g} s)"
            continue
        one = run_benchmarks(
            [workload],
            [args.fastnet_backend],
            repeats=args.repeats,
            warmup=args.warmup,
            torch_device=args.torch_device,
            matmul_bound=False,
            steps=args.steps,
            plot=False,
        )
        result["missing_contenders"].update(one["missing_contenders"])
        result.setdefault("settings", one["settings"])
        result.setdefault("machine", one.get("machine"))
        entry = result["workloads"][workload.name] = one["workloads"][workload.name]
        if TORCH in entry["results"]:
            try:
                entry["loss_agreement"] = compare_losses(workload, args.fastnet_backend, args.torch_device)
            except Exception as exc:  # reported as a problem of this workload, the others still run
                entry["loss_agreement"] = {
                    "agree": False,
                    "error": f"{type(exc).__name__}: {exc}",
                    "max_relative_difference": float("nan"),
                }
        save_json(result, out_dir, JSON_NAME)  # what was measured survives a timeout
    result["problems"] = _problems(result, [w.name for w in workloads])
    save_json(result, out_dir, JSON_NAME)
    if result["workloads"] and not args.no_plot:
        try:
            save_plot(result, out_dir, JSON_NAME.replace(".json", ".png"))
        except ImportError as exc:  # the figures are in the JSON; the picture is a convenience
            print(f"bench_gpu: no plot ({exc}); pip install matplotlib")

    backend = args.fastnet_backend
    print(f"{'workload':<52}{'fastnet img/s':>15}{'torch img/s':>13}{'time vs torch':>15}{'loss diff':>11}")
    for entry in result["workloads"].values():
        runs = entry["results"]
        fast = entry["batch"] / runs[backend]["median_s"]
        torch = entry["batch"] / runs[TORCH]["median_s"] if TORCH in runs else None
        agreement = entry.get("loss_agreement", {}).get("max_relative_difference")
        print(
            f"{entry['description']:<52}{fast:>15,.0f}"
            + (f"{torch:>13,.0f}{torch / fast:>15.2f}" if torch else f"{'-':>13}{'-':>15}")
            + (f"{agreement:>11.1e}" if agreement is not None else f"{'-':>11}")
        )
    print(f"wrote {out_dir / JSON_NAME}")
    for line in result["problems"]:
        print(f"bench_gpu: {line}")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
