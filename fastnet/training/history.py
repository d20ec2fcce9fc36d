"""Per-epoch metrics of a run, saved as JSON and plotted as curves."""
from __future__ import annotations

import json

from fastnet.atomic import atomic_write

COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_seconds",
           "samples_per_second")
# Kept only by runs that have them (a validation split; the rate at each epoch's end), so that
# the histories of runs without them, and their checkpoints, read as before.
OPTIONAL_COLUMNS = ("val_loss", "val_acc", "lr")


class History:
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

    def save(self, path, **extra):
        payload = {**extra, "history": self.data}
        return atomic_write(path, lambda f: f.write(json.dumps(payload, indent=1)), binary=False)
