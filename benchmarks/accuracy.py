"""Reproduce the README's accuracy table on the full MNIST.

    python benchmarks/accuracy.py --data-dir ../shared/data/mnist [--rows two-layer simple-conv deep-conv]

Each row runs the exact ``fastnet train`` command shown in the table, in its own process, and
records the final test accuracy, epochs and wall time in benchmarks/results/accuracy.json.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROWS = {
    # The classic settings: 10,000 iterations of batch 100 = about 17 epochs.
    "two-layer": ["--net", "two-layer", "--epochs", "17"],
    "simple-conv": ["--net", "simple-conv", "--optimizer", "adam", "--lr", "0.001", "--epochs", "20"],
    "deep-conv": ["--net", "deep-conv", "--optimizer", "adam", "--lr", "0.001", "--epochs", "15"],
}
GOALS = {"two-layer": 0.97, "simple-conv": 0.989, "deep-conv": 0.993}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--rows", nargs="+", choices=list(ROWS), default=list(ROWS))
    parser.add_argument("--backend", default="auto")
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    out = Path(args.out)
    results_path = out / "accuracy.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    for row in args.rows:
        run_dir = out / "accuracy" / row
        command = ["fastnet", "train", *ROWS[row], "--data-dir", args.data_dir,
                   "--backend", args.backend, "--out", str(run_dir), "--overwrite", "--quiet"]
        print("$ " + " ".join(command), flush=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fastnet", *command[1:]], check=True)
        wall = time.perf_counter() - started
        history = json.loads((run_dir / "history.json").read_text())
        h = history["history"]
        results[row] = {"command": " ".join(command), "backend": history.get("backend"),
                        "epochs": h["epoch"][-1], "test_acc": h["test_acc"][-1],
                        "best_test_acc": max(h["test_acc"]), "train_acc": h["train_acc"][-1],
                        "wall_seconds": round(wall, 1), "goal": GOALS[row],
                        "met": h["test_acc"][-1] >= GOALS[row],
                        "when": time.strftime("%Y-%m-%d %H:%M")}
        out.mkdir(parents=True, exist_ok=True)
        results_path.write_text(json.dumps(results, indent=1))
        r = results[row]
        print(f"{row}: test {r['test_acc']:.4f} after {r['epochs']} epochs, {wall / 60:.1f} min "
              f"(goal {r['goal']}: {'met' if r['met'] else 'NOT met'})", flush=True)


if __name__ == "__main__":
    main()
