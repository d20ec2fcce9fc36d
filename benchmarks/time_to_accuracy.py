"""Time to 99% validation accuracy: ``fastnet train`` against the same recipe as a plain PyTorch
script, SimpleConvNet on the full MNIST, each in its own process, one after the other.

    python benchmarks/time_to_accuracy.py --data-dir ../shared/data/mnist [--epochs 15] [--target 0.99]

Both programs get the same images, the same 5,000-image validation split, the same net, recipe
(momentum SGD at 0.05, L2 weight decay 5e-4, a one-epoch warm-up and a cosine decay, batch 100)
and the same evaluation work after every epoch (loss and accuracy on the same fixed sample of
10,000 training images, fastnet train's default, and on the full validation and test sets).
Each epoch line is stamped with the wall clock since its process was started, so start-up, data
loading, compilation and evaluation all count. The time to the target
is the stamp of the first epoch whose validation accuracy reaches it. Results go to
benchmarks/results/time_to_accuracy.json with the machine, BLAS kernel and both commands.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+):.*val loss [\d.]+ acc ([\d.]+)")
RECIPE = [
    "--optimizer",
    "momentum",
    "--lr",
    "0.05",
    "--lr-schedule",
    "cosine",
    "--warmup-epochs",
    "1",
    "--weight-decay",
    "0.0005",
    "--val-split",
    "5000",
    "--seed",
    "0",
]


def commands(data_dir, epochs, out):
    fastnet = [
        sys.executable,
        "-m",
        "fastnet",
        "train",
        "--net",
        "simple-conv",
        "--backend",
        "numba",
        *RECIPE,
        "--epochs",
        str(epochs),
        "--data-dir",
        str(data_dir),
        "--out",
        str(out),
        "--quiet",
    ]
    torch = [
        sys.executable,
        str(HERE / "torch_simple_conv.py"),
        "--data-dir",
        str(data_dir),
        "--epochs",
        str(epochs),
        "--val-split",
        "5000",
        "--seed",
        "0",
    ]
    return {"fastnet": fastnet, "pytorch": torch}


def timed_run(command, target, log, stop_at_target=True):
    """Run ``command``; each epoch's (epoch, seconds since the start, validation accuracy).
    With ``stop_at_target`` the program is ended once it reaches the target: its time is taken."""
    epochs, reached = [], None
    start = time.perf_counter()
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    last = []
    for line in proc.stdout:
        last = [*last[-4:], line.rstrip()]
        found = EPOCH_LINE.match(line)
        if not found:
            continue
        epoch, acc, seconds = int(found.group(1)), float(found.group(3)), time.perf_counter() - start
        epochs.append({"epoch": epoch, "wall_s": round(seconds, 2), "val_acc": acc})
        log(f"  epoch {epoch}: val acc {acc:.4f} at {seconds:.1f} s")
        if reached is None and acc >= target:
            reached = epochs[-1]
            if stop_at_target:
                proc.terminate()
                proc.stdout.close()
                break
    if proc.wait() != 0 and not (stop_at_target and reached):
        raise SystemExit(f"time_to_accuracy: {shlex.join(command)} exited {proc.returncode}: " + " / ".join(last))
    return {
        "epochs": epochs,
        "total_s": round(time.perf_counter() - start, 2),
        "reached": reached,
        "seconds_to_target": reached and reached["wall_s"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--out", default=str(HERE / "results" / "time_to_accuracy.json"))
    parser.add_argument("--dry-run", action="store_true", help="print the two commands and stop")
    parser.add_argument(
        "--whole-runs", action="store_true", help="train every epoch instead of ending each program at the target"
    )
    args = parser.parse_args()

    import tempfile

    from fastnet.atomic import atomic_write
    from fastnet.benchmarking.machine import machine_info

    with tempfile.TemporaryDirectory() as scratch:
        runs = commands(Path(args.data_dir).resolve(), args.epochs, Path(scratch) / "run")
        if args.dry_run:
            for name, command in runs.items():
                print(f"{name}: {shlex.join(command)}")
            return 0
        results = {}
        for name, command in runs.items():
            print(f"{name}: {shlex.join(command)}", flush=True)
            timed = timed_run(command, args.target, print, stop_at_target=not args.whole_runs)
            results[name] = {"command": shlex.join(command), **timed}
    fast, torch = (results[n]["seconds_to_target"] for n in ("fastnet", "pytorch"))
    ratio = fast / torch if fast and torch else None
    summary = {
        "target_val_acc": args.target,
        "epochs": args.epochs,
        "date": time.strftime("%Y-%m-%d"),
        "fastnet_vs_pytorch": ratio,
        "runs": results,
        "machine": machine_info(),
    }
    atomic_write(args.out, lambda f: f.write(json.dumps(summary, indent=1).encode() + b"\n"))
    for name, run in results.items():
        reached = run["reached"]
        print(
            f"{name}: "
            + (
                f"val acc {reached['val_acc']:.4f} at epoch {reached['epoch']}, {reached['wall_s']:.1f} s"
                if reached
                else f"never reached {args.target} in {args.epochs} epochs"
            )
            + f" (whole run {run['total_s']:.1f} s)"
        )
    print(
        f"fastnet / pytorch time to {args.target}: "
        + (f"{ratio:.2f}x" if ratio else "not measured")
        + f"; results: {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
