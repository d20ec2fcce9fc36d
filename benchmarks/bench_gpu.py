"""Training-step throughput on the GPU: fastnet's cupy backend against PyTorch on CUDA.

The same harness as ``fastnet bench`` (fastnet.benchmarking: workloads, PyTorch twins with the
same weights, interleaved timing), with the device synchronised before every clock read.
Each figure is the median over repeats taken after warm-up; TF32 is off in PyTorch so both
sides compute in true float32 (CuPy does not use TF32 unless CUPY_TF32=1).

    python benchmarks/bench_gpu.py                      # JSON into $OUT or benchmarks/results/
    python benchmarks/bench_gpu.py --fastnet-backend numpy --torch-device cpu --quick   # smoke test
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastnet.backends import get_backend, unavailable_reason  # noqa: E402
from fastnet.benchmarking import run_benchmarks  # noqa: E402
from fastnet.benchmarking.runner import TORCH  # noqa: E402
from fastnet.benchmarking.workloads import NETS, step_workload  # noqa: E402

DEFAULT_NETS = ("two-layer", "wide-mlp", "simple-conv")


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
    parser.add_argument("--out", default=os.environ.get("OUT") or str(Path(__file__).parent / "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.warmup, args.repeats, args.steps = 1, 2, 2
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / "bench_gpu.json"

    reason = unavailable_reason(args.fastnet_backend)
    if reason is not None:
        skipped = f"backend {args.fastnet_backend} unavailable: {reason}"
        out_file.write_text(json.dumps({"skipped": skipped}, indent=2) + "\n")
        print(f"skipped: {skipped}")
        return 0
    backend = args.fastnet_backend
    print(f"fastnet: {get_backend(backend).describe()}")
    workloads = [step_workload(net, batch) for net in args.nets for batch in args.batches]
    result = run_benchmarks(workloads, [backend], repeats=args.repeats, warmup=args.warmup,
                            torch_device=args.torch_device, matmul_bound=False, steps=args.steps,
                            out_dir=out_dir, json_name="bench_gpu.json", plot=False)
    for contender, why in result["missing_contenders"].items():
        print(f"{contender} part skipped: {why}")
    print(f"{'workload':<52}{'fastnet img/s':>15}{'torch img/s':>13}{'fastnet/torch':>15}")
    for entry in result["workloads"].values():
        runs = entry["results"]
        fast = entry["batch"] / runs[backend]["median_s"]
        torch = entry["batch"] / runs[TORCH]["median_s"] if TORCH in runs else None
        torch_col = f"{torch:>13,.0f}" if torch else f"{'-':>13}"
        ratio_col = f"{fast / torch:>15.2f}" if torch else f"{'-':>15}"
        print(f"{entry['description']:<52}{fast:>15,.0f}{torch_col}{ratio_col}")
    print(f"wrote {out_file}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
