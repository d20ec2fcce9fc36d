"""fastnet in a notebook: its pictures are Figures of their own, so the user's pyplot backend
and open figures are untouched; history.csv and History.to_dataframe give one row per epoch."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastnet_cli import cli_env, run_cli

import fastnet
from fastnet.training.history import History

SOURCE = Path(fastnet.__file__).parent


def test_no_module_switches_the_matplotlib_backend():
    offenders = [str(p) for p in SOURCE.rglob("*.py") if "matplotlib.use(" in p.read_text()]
    assert offenders == []


USER_SESSION = r"""
import matplotlib
matplotlib.use("svg")                  # the user's choice (a notebook's would be its inline backend)
import matplotlib.pyplot as plt
import numpy
user_fig = plt.figure()
plt.plot([1, 2, 3])
from fastnet.plots import confusion_figure, curves_figure, write_eval_pictures
from fastnet.training.history import History
h = History()
for e in (1, 2):
    h.add_epoch(epoch=e, train_loss=1.0 / e, train_acc=0.5 + e / 10, test_loss=1.1 / e, test_acc=0.5 + e / 11)
fig = h.plot()
fig.savefig(sys.argv[1] + "/curves.png")
rng = numpy.random.default_rng(0)
labels = rng.integers(0, 10, 50)
write_eval_pictures(sys.argv[1], numpy.eye(10, dtype=int) * 5, rng.random((50, 784)), labels,
                    rng.random((50, 10)))
print(matplotlib.get_backend(), plt.get_fignums(), type(fig).__name__)
"""


def test_users_backend_and_figures_survive_fastnet_pictures(tmp_path):
    pytest.importorskip("matplotlib")
    done = subprocess.run(
        [sys.executable, "-c", "import sys\n" + USER_SESSION, str(tmp_path)],
        capture_output=True,
        text=True,
        env=cli_env(tmp_path),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "[1]", "Figure"]
    assert {p.name for p in tmp_path.glob("*.png")} == {"curves.png", "confusion.png", "errors.png"}


def _history():
    h = History()
    for e in (1, 2, 3):
        h.add_epoch(
            epoch=e,
            train_loss=1.0 / e,
            train_acc=0.9,
            test_loss=1.2 / e,
            test_acc=0.88,
            epoch_seconds=1.0,
            samples_per_second=100.0,
            val_acc=0.8 if e > 1 else None,
        )
        h.add_step_loss(e * 10, 1.0 / e)
        h.add_step_loss(e * 10 + 5, 0.9 / e)
    return h


def test_history_csv_has_one_row_per_epoch(tmp_path):
    _history().save(tmp_path / "history.json")
    rows = list(csv.DictReader((tmp_path / "history.csv").read_text().splitlines()))
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["val_acc"] == "" and rows[1]["val_acc"] == "0.8"
    assert "step_loss" not in rows[0]


def test_to_dataframe():
    pandas = pytest.importorskip("pandas", reason="History.to_dataframe needs pandas")
    frame = _history().to_dataframe()
    assert isinstance(frame, pandas.DataFrame) and list(frame.index) == [1, 2, 3]
    assert frame.loc[2, "test_loss"] == pytest.approx(0.6)


def test_a_training_run_writes_history_csv(tmp_path):
    done = run_cli(
        "train",
        "--dataset",
        "sample",
        "--limit",
        "500",
        "--epochs",
        "2",
        "--backend",
        "numpy",
        "--out",
        tmp_path / "run",
        "--quiet",
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").read_text().splitlines()))
    recorded = json.loads((tmp_path / "run" / "history.json").read_text())["history"]
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert [float(r["test_acc"]) for r in rows] == recorded["test_acc"]
