"""Training curves from a run's history columns: loss, accuracy and, when known, the learning rate.

``columns`` is a history dict (``History.to_dict()``): ``epoch``, ``train_loss``, ``train_acc``,
``test_loss``, ``test_acc``, optionally ``val_loss``, ``val_acc``, ``lr`` (the rate in use at
each epoch's end), ``step_loss`` and ``step_lr`` (``[iteration, value]`` pairs).  Columns that
are absent, empty or all None are left out.
"""

from __future__ import annotations

from fastnet.best_epoch import best_epoch_index
from fastnet.plots.figure import new_figure

SPLITS = (("train", "o-"), ("val", "^-"), ("test", "s-"))


def curves_figure(columns: dict, title=""):
    epochs = list(columns.get("epoch") or [])
    has_lr = _present(columns, "lr") or bool(columns.get("step_lr"))
    fig = new_figure(figsize=(15 if has_lr else 10, 4))
    axes = fig.subplots(1, 3 if has_lr else 2)
    ax_loss, ax_acc = axes[0], axes[1]
    per_epoch = _steps_per_epoch(columns, epochs)
    if columns.get("step_loss") and per_epoch:
        steps, losses = zip(*columns["step_loss"], strict=True)
        ax_loss.plot([s / per_epoch for s in steps], losses, color="0.75", lw=0.8, label="train (minibatches)")
    for split, style in SPLITS:
        if _present(columns, f"{split}_loss"):
            ax_loss.plot(*_pairs(epochs, columns[f"{split}_loss"]), style, label=split)
        if _present(columns, f"{split}_acc"):
            ax_acc.plot(*_pairs(epochs, columns[f"{split}_acc"]), style, label=split)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss", yscale="log")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    best = best_epoch_index(columns)
    if best is not None:
        ax_acc.axvline(epochs[best], color="0.5", ls=":", lw=1, label=f"best val (epoch {epochs[best]})")
    if has_lr:
        ax_lr = axes[2]
        if columns.get("step_lr") and per_epoch:
            steps, rates = zip(*columns["step_lr"], strict=True)
            ax_lr.plot([s / per_epoch for s in steps], rates, lw=1.2, label="per update")
        if _present(columns, "lr"):
            ax_lr.plot(*_pairs(epochs, columns["lr"]), "o", ms=4, label="at epoch end")
        ax_lr.set(xlabel="epoch", ylabel="learning rate", title="learning rate")
        ax_lr.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def _present(columns, key):
    return any(v is not None for v in columns.get(key) or [])


def _pairs(epochs, values):
    kept = [(e, v) for e, v in zip(epochs, values, strict=True) if v is not None]
    return [e for e, _ in kept], [v for _, v in kept]


def _steps_per_epoch(columns, epochs):
    """Iterations per epoch, from the last logged step and epoch (None when unknown)."""
    steps = [s for s, _ in columns.get("step_loss") or columns.get("step_lr") or []]
    if not steps or not epochs:
        return None
    return steps[-1] / max(epochs[-1], 1)
