"""Per-epoch metrics of a run, saved as JSON and plotted as curves."""
from __future__ import annotations

import json

from fastnet.atomic import atomic_write

COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "epoch_seconds",
           "samples_per_second")


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

    def add_step_loss(self, iteration: int, loss: float):
        self.data["step_loss"].append([iteration, loss])

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
