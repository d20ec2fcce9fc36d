"""Time to 99% validation accuracy: ``fastnet train`` against the same recipe as a plain PyTorch
script, SimpleConvNet on the full MNIST, each in its own process, one after the other.

    python benchmarks/time_to_accuracy.py --data-dir ../shared/data/mnist [--epochs 15] [--target 0.99]
        [--seeds 0 1 2]

Both programs get the same images, the same 5,000-image validation split, the same net, recipe
(momentum SGD at 0.05, L2 weight decay 5e-4, a one-epoch warm-up and a cosine decay, batch 100)
and the same evaluation work after every epoch (loss and accuracy on the same fixed sample of
10,000 training images, fastnet train's default, and on the full validation and test sets).
Each epoch line is stamped with the wall clock since its process was started, so start-up, data
loading, compilation and evaluation all count. The time to the target
is the stamp of the first epoch whose validation accuracy reaches it.  Which epoch first
reaches 99% moves with the seed (initial weights, batch order), so each seed runs both programs
with that seed, one after the other; the summary gives each seed's ratio, their median, and
the ratio of the mean epoch times after the first (the steady pace, which no seed moves much).
Results go to benchmarks/results/time_to_accuracy.json with the machine, BLAS kernel and the
commands.
"""

import argparse
import itertools
import json
import math
import os
import re
import shlex
import statistics
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
]


def commands(data_dir, epochs, out, seed=0):
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
        "--seed",
        str(seed),
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
        str(seed),
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
    later = [b["wall_s"] - a["wall_s"] for a, b in itertools.pairwise(epochs)]
    return {
        "epochs": epochs,
        "epoch_s": round(sum(later) / len(later), 3) if later else None,
        "total_s": round(time.perf_counter() - start, 2),
        "reached": reached,
        "seconds_to_target": reached and reached["wall_s"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one pair of runs per seed (default: 0)")
    parser.add_argument("--out", default=str(HERE / "results" / "time_to_accuracy.json"))
    parser.add_argument("--dry-run", action="store_true", help="print the two commands and stop")
    parser.add_argument(
        "--whole-runs", action="store_true", help="train every epoch instead of ending each program at the target"
    )
    args = parser.parse_args()

    import tempfile

    from fastnet.atomic import atomic_write
    from fastnet.benchmarking.machine import machine_info

    per_seed = []
    for seed in args.seeds:
        with tempfile.TemporaryDirectory() as scratch:
            runs = commands(Path(args.data_dir).resolve(), args.epochs, Path(scratch) / "run", seed)
            if args.dry_run:
                for name, command in runs.items():
                    print(f"{name}: {shlex.join(command)}")
                continue
            results = {}
            for name, command in runs.items():
                print(f"seed {seed}, {name}: {shlex.join(command)}", flush=True)
                timed = timed_run(command, args.target, print, stop_at_target=not args.whole_runs)
                results[name] = {"command": shlex.join(command), **timed}
        per_seed.append({"seed": seed, **_compare(results), "runs": results})
    if args.dry_run:
        return 0
    summary = {
        "target_val_acc": args.target,
        "epochs": args.epochs,
        "date": time.strftime("%Y-%m-%d"),
        "seeds": args.seeds,
        **summarise(per_seed),
        "per_seed": per_seed,
        "machine": machine_info(),
    }
    atomic_write(args.out, lambda f: f.write(json.dumps(summary, indent=1).encode() + b"\n"))
    for entry in per_seed:
        for name, run in entry["runs"].items():
            reached = run["reached"]
            print(
                f"seed {entry['seed']}, {name}: "
                + (
                    f"val acc {reached['val_acc']:.4f} at epoch {reached['epoch']}, {reached['wall_s']:.1f} s"
                    if reached
                    else f"never reached {args.target} in {args.epochs} epochs"
                )
                + f" (whole run {run['total_s']:.1f} s; {run['epoch_s']:.2f} s an epoch after the first)"
            )
        print(f"seed {entry['seed']}: fastnet / pytorch time to {args.target}: {_bounds(entry['ratio_bounds'])}")
    print(
        f"median over seeds {', '.join(map(str, args.seeds))}: time to {args.target} "
        f"{_bounds(summary['median_ratio_bounds'])}, epoch pace {_bounds([summary['epoch_pace_ratio']] * 2)}; "
        f"results: {args.out}"
    )
    return 0


def _bounds(bounds):
    low, high = bounds
    if low is None and high is None:
        return "not measured (neither reached the target)"
    if low == high:
        return f"{low:.2f}x"
    if not low:
        return f"below {high:.2f}x"
    if high is None:
        return f"above {low:.2f}x"
    return f"{low:.2f}-{high:.2f}x"


def _compare(results):
    """The seed's ratios: time to the target, and mean epoch time after the first (the pace).

    A program that never reached the target ran for its whole run without it: its time to the
    target is longer than that, so the ratio is only bounded, ``ratio_bounds`` (low, high);
    None for a side with no bound (neither program reached it: (None, None))."""
    fast, torch = (results[n]["seconds_to_target"] for n in ("fastnet", "pytorch"))
    whole = {n: results[n]["total_s"] for n in ("fastnet", "pytorch")}
    if fast and torch:
        bounds = (fast / torch, fast / torch)
    elif fast:  # PyTorch would have needed more than its whole run
        bounds = (0.0, fast / whole["pytorch"])
    elif torch:  # fastnet would have needed more than its whole run
        bounds = (whole["fastnet"] / torch, None)
    else:
        bounds = (None, None)
    paces = [results[n]["epoch_s"] for n in ("fastnet", "pytorch")]
    return {
        "fastnet_vs_pytorch": bounds[0] if bounds[0] == bounds[1] else None,
        "ratio_bounds": bounds,
        "epoch_pace_ratio": paces[0] / paces[1] if all(paces) else None,
    }


def summarise(per_seed):
    """The median of the seeds' ratios as (low, high): the median of their low bounds and of their
    high bounds (a seed bounded on one side only counts as 0 or infinity there); and the median
    of their epoch pace ratios."""
    lows = [e["ratio_bounds"][0] for e in per_seed if tuple(e["ratio_bounds"]) != (None, None)]
    highs = [e["ratio_bounds"][1] for e in per_seed if tuple(e["ratio_bounds"]) != (None, None)]
    high = statistics.median([math.inf if h is None else h for h in highs]) if highs else None
    paces = [e["epoch_pace_ratio"] for e in per_seed if e["epoch_pace_ratio"]]
    bounds = (statistics.median(lows) if lows else None, None if high in (None, math.inf) else high)
    return {
        "fastnet_vs_pytorch": bounds[0] if bounds[0] == bounds[1] else None,
        "median_ratio_bounds": bounds,
        "epoch_pace_ratio": statistics.median(paces) if paces else None,
    }


if __name__ == "__main__":
    sys.exit(main())
