"""Per-epoch metrics of a run, saved as JSON and plotted as curves."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from fastnet.atomic import atomic_write

COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_seconds", "samples_per_second")
STEP_SERIES = ("step_loss", "step_lr")  # (iteration, value) pairs: in history.json, not in the table
# Kept only by runs that have them (a validation split; the rate at each epoch's end), so that
# the histories of runs without them, and their checkpoints, read as before.
OPTIONAL_COLUMNS = ("val_loss", "val_acc", "lr")


class History:
    data: dict[str, list[Any]]

    def __init__(self, data: dict | None = None):
        self.data = {c: [] for c in COLUMNS}
        self.data["step_loss"] = []  # (iteration, mean loss over the logging interval)
        if data:
            for key, values in data.items():
                self.data[key] = list(values)

    def add_epoch(self, **row):
        for column in COLUMNS:
            self.data[column].append(row.get(column))
        for column in OPTIONAL_COLUMNS:
            if row.get(column) is not None or column in self.data:
                # A column that starts late is padded, so every column has one value per epoch.
                self.data.setdefault(column, [None] * (len(self.data["epoch"]) - 1)).append(row.get(column))

    def add_step_loss(self, iteration: int, loss: float):
        self.data["step_loss"].append([iteration, loss])

    def add_step_lr(self, iteration: int, lr: float):
        """The learning rate of the update at ``iteration`` (logged with the step losses)."""
        self.data.setdefault("step_lr", []).append([iteration, float(lr)])

    def last(self, column):
        values = self.data[column]
        return values[-1] if values else None

    def __len__(self):
        return len(self.data["epoch"])

    def to_dict(self) -> dict:
        return self.data

    def epoch_columns(self) -> dict:
        """The per-epoch series (one value per epoch each), in a stable order."""
        count = len(self)
        order = [*COLUMNS, *OPTIONAL_COLUMNS]
        names = [c for c in order if c in self.data] + sorted(set(self.data) - set(order) - set(STEP_SERIES))
        return {c: self.data[c] for c in names if isinstance(self.data[c], list) and len(self.data[c]) == count}

    def to_csv(self) -> str:
        """One row per epoch; an empty cell where a column has no value (e.g. no validation yet)."""
        columns = self.epoch_columns()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(zip(*columns.values(), strict=True))
        return out.getvalue()

    def to_dataframe(self):
        """A pandas DataFrame, one row per epoch indexed by epoch (needs pandas)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("History.to_dataframe needs pandas (pip install pandas)") from None
        frame = pandas.DataFrame(self.epoch_columns())
        return frame.set_index("epoch") if "epoch" in frame else frame

    def plot(self, title=""):
        """The run's curves (loss, accuracy, learning rate) as a matplotlib Figure; in a notebook
        it shows itself, and the user's pyplot is left as it was."""
        from fastnet.plots import curves_figure

        return curves_figure(self.data, title=title)

    def save(self, path, **extra):
        """``history.json`` (everything, the step-level series too) and beside it ``history.csv``
        (one row per epoch), each written atomically."""
        payload = {**extra, "history": self.data}
        written = atomic_write(path, lambda f: f.write(json.dumps(payload, indent=1)), binary=False)
        table = self.to_csv()
        atomic_write(Path(path).with_suffix(".csv"), lambda f: f.write(table), binary=False)
        return written
