"""Turning benchmark results into a table, a JSON file and a bar chart."""

from __future__ import annotations

import json
from pathlib import Path

from fastnet.atomic import atomic_write


def _ms(seconds):
    return f"{seconds * 1e3:9.3f}"


def format_table(result: dict) -> str:
    lines = []
    header = (
        f"{'workload / contender':<34}{'median ms':>10}{'min ms':>10}{'max ms':>10}{'vs torch':>10}{'vs matmul':>10}"
    )
    for entry in result["workloads"].values():
        lines += ["", entry["description"], header]
        vs_torch = entry["ratios"].get("vs_pytorch", {})
        vs_bound = entry["ratios"].get("vs_matmul_bound", {})
        for contender, r in entry["results"].items():
            t = f"{vs_torch[contender]:9.2f}x" if contender in vs_torch else f"{'':10}"
            b = f"{vs_bound[contender]:9.2f}x" if contender in vs_bound else f"{'':10}"
            lines.append(f"  {contender:<32}{_ms(r['median_s'])} {_ms(r['min_s'])} {_ms(r['max_s'])}{t}{b}")
        threads = {
            r["threads"] for c, r in entry["results"].items() if c in ("numpy", "numba", "cupy") and "threads" in r
        }
        lines += [f"  fastnet {t}" for t in sorted(threads)]
        quiet = entry["ratios"].get("vs_quiet")
        if quiet:
            lines.append("  under this load vs quiet: " + ", ".join(f"{c} {v:.2f}x" for c, v in quiet.items()))
    for contender, reason in result.get("missing_contenders", {}).items():
        column = "vs torch" if contender == "pytorch" else contender
        lines += ["", f"{column}: blank, {reason}"]
    warm = result.get("numba_warm_up") or {}
    if warm:
        lines.append("")
        if "numba_backend_load_s" in warm:
            lines.append(f"numba backend load (import numba + kernels module): {warm['numba_backend_load_s']:.3f} s")
        for name, seconds in warm.get("numba_first_call_s", {}).items():
            lines.append(f"numba first call in this process, {name}: {seconds:.3f} s")
    return "\n".join(lines).lstrip("\n")


def save_json(result: dict, out_dir, name="cpu.json") -> Path:
    text = json.dumps(result, indent=2) + "\n"
    return atomic_write(Path(out_dir) / name, lambda f: f.write(text), binary=False)


def save_plot(result: dict, out_dir, name="cpu.png") -> Path:
    """One panel per workload: median time per contender, whiskers over the middle half of the
    samples (min-max would let one sample disturbed by other load set the scale)."""
    import numpy

    from fastnet.plots.figure import new_figure

    entries = result["workloads"]
    fig = new_figure(figsize=(4.2 * len(entries), 3.8))
    axes = fig.subplots(1, len(entries), squeeze=False)
    for ax, entry in zip(axes[0], entries.values(), strict=True):
        names = list(entry["results"])
        med = [entry["results"][n]["median_s"] * 1e3 for n in names]
        quartiles = [numpy.percentile(entry["results"][n]["samples_s"], [25, 75]) * 1e3 for n in names]
        low = [max(m - q[0], 0) for m, q in zip(med, quartiles, strict=True)]
        high = [max(q[1] - m, 0) for m, q in zip(med, quartiles, strict=True)]
        colors = ["tab:gray" if n == "matmul bound" else "tab:orange" if n == "pytorch" else "tab:blue" for n in names]
        ax.bar(names, med, yerr=[low, high], color=colors, capsize=3)
        ax.set_title(entry["description"], fontsize=8)
        ax.set_ylabel("ms per call (median; quartiles)")
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
    fig.tight_layout()
    path = Path(out_dir) / name
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    return path
