"""The one rule that says which epoch is best: the highest validation accuracy, then the lowest
validation loss, then the earliest.  ``ModelSelection`` (best.npz, early stopping), the final report,
``curves.png`` and the accuracy benchmark all choose with it, so they name the same epoch."""

from __future__ import annotations


def selection_key(val_acc, val_loss, index=0) -> tuple:
    """Larger is better."""
    return (val_acc, -val_loss, -index)


def best_epoch_index(history: dict) -> int | None:
    """The 0-based position of the best validation epoch in a history dict (None: no validation)."""
    accs, losses = history.get("val_acc") or [], history.get("val_loss") or []
    known = [i for i, (acc, loss) in enumerate(zip(accs, losses, strict=True)) if acc is not None and loss is not None]
    if not known:
        return None
    return max(known, key=lambda i: selection_key(accs[i], losses[i], i))
