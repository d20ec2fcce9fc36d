"""The bench picture: one figure of ratios against PyTorch on a log scale, titled with the machine,
the BLAS kernel and the date, with every label inside the picture."""

import json
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from fastnet.benchmarking.report import bench_figure, save_plot

RECORDED = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "cpu.json"


def recorded_result():
    result = json.loads(RECORDED.read_text())
    result["machine"].update(cpu_model="Example CPU 9000", measured_at="2026-01-02 03:04 UTC")
    return result


def test_one_log_scale_panel_of_ratios_to_pytorch_with_machine_kernel_and_date():
    result = recorded_result()
    fig = bench_figure(result)
    (ax,) = fig.axes
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    expected = [f"{w}: {c}" for w, e in result["workloads"].items() for c in e["ratios"]["vs_pytorch"]]
    assert sorted(labels) == sorted(expected)
    widths = sorted(round(p.get_width(), 9) for p in ax.patches)
    ratios = sorted(round(v, 9) for e in result["workloads"].values() for v in e["ratios"]["vs_pytorch"].values())
    assert widths == ratios
    title = ax.get_title(loc="left")
    kernel = result["machine"]["blas"][0]["architecture"]  # whichever kernel recorded the file
    assert "Example CPU 9000" in title and kernel in title and "2026-01-02" in title


def test_no_label_is_cut_off():
    fig = bench_figure(recorded_result())
    canvas = FigureCanvasAgg(fig)  # what savefig renders with
    canvas.draw()  # layout happens at draw time
    renderer = canvas.get_renderer()
    drawn = fig.get_tightbbox(renderer)  # inches, around everything drawn
    page = fig.bbox_inches
    assert page.x0 - 0.01 <= drawn.x0 and drawn.x1 <= page.x1 + 0.01
    assert page.y0 - 0.01 <= drawn.y0 and drawn.y1 <= page.y1 + 0.01


def test_without_pytorch_the_bars_are_times(tmp_path):
    result = recorded_result()
    for entry in result["workloads"].values():
        entry["ratios"].pop("vs_pytorch", None)
        entry["results"].pop("pytorch", None)
    fig = bench_figure(result)
    assert "median ms" in fig.axes[0].get_xlabel()
    path = save_plot(result, tmp_path)
    assert path.read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("missing", ["machine", "blas"])
def test_a_result_without_machine_details_still_draws(missing):
    result = recorded_result()
    if missing == "machine":
        del result["machine"]
    else:
        del result["machine"]["blas"]
    assert "unknown" in bench_figure(result).axes[0].get_title(loc="left")
