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
    """``bench_figure(result)`` saved as a PNG in ``out_dir``."""
    fig = bench_figure(result)
    path = Path(out_dir) / name
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    return path


def bench_figure(result: dict):
    """One figure of each contender's time relative to PyTorch, per workload, on a log scale
    (below 1: faster than PyTorch).  Without PyTorch in the run the bars are median times instead.
    The title names the machine, the BLAS kernel and the date, so a picture is never read without them."""
    from fastnet.plots.figure import new_figure

    rows = _plot_rows(result)
    relative = any(entry["ratios"].get("vs_pytorch") for entry in result["workloads"].values())
    fig = new_figure(figsize=(8.5, 1.2 + 0.32 * max(len(rows), 1)), layout="constrained")
    ax = fig.subplots()
    labels = [label for label, _, _ in rows]
    values = [value for _, value, _ in rows]
    colors = [
        "tab:gray" if who == "matmul bound" else "tab:green" if relative and value <= 1 else "tab:blue"
        for (_, value, who) in rows
    ]
    positions = list(range(len(rows)))[::-1]  # first workload on top
    ax.barh(positions, values, color=colors, height=0.7)
    ax.set_yticks(positions, labels, fontsize=8)
    ax.set_xscale("log")
    for y, value in zip(positions, values, strict=True):
        text = f"{value:.2f}x" if relative else f"{value:.3g} ms"
        ax.annotate(text, (value, y), xytext=(3, 0), textcoords="offset points", va="center", fontsize=7)
    if relative:
        ax.axvline(1.0, color="tab:orange", linewidth=1.2)
        ax.set_xlabel("time relative to PyTorch CPU (median; below 1 is faster)")
    else:
        ax.set_xlabel("median ms per call (PyTorch was not in this run)")
    if values:
        ax.set_xlim(min(values) / 1.6, max(values) * 2.2)  # room for the labels beside the bars
    ax.set_title(_plot_title(result), fontsize=8, loc="left")
    return fig


def _plot_rows(result: dict) -> list[tuple[str, float, str]]:
    rows = []
    for workload, entry in result["workloads"].items():
        vs_torch = entry["ratios"].get("vs_pytorch", {})
        for contender, timing in entry["results"].items():
            if vs_torch:
                if contender in vs_torch:
                    rows.append((f"{workload}: {contender}", vs_torch[contender], contender))
            else:
                rows.append((f"{workload}: {contender}", timing["median_s"] * 1e3, contender))
    return rows


def _plot_title(result: dict) -> str:
    from fastnet.blas import describe_blas

    machine = result.get("machine", {})
    cores = machine.get("usable_cores")
    where = machine.get("cpu_model") or machine.get("processor") or "unknown CPU"
    line = f"{where}" + (f", {cores} usable cores" if cores else "")
    return f"fastnet bench: {line}\nBLAS {describe_blas(machine.get('blas', []))}; {machine.get('measured_at', '')}"
