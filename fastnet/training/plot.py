"""Loss and accuracy curves as a PNG."""
from __future__ import annotations

import io

from fastnet.atomic import atomic_write


def plot_history(history, path, title=""):
    import matplotlib

    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    data = history.to_dict()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    if data["step_loss"]:
        steps, losses = zip(*data["step_loss"])
        steps_per_epoch = steps[-1] / max(data["epoch"][-1], 1) if data["epoch"] else 1
        ax_loss.plot([s / steps_per_epoch for s in steps], losses, color="0.75", lw=0.8,
                     label="train (minibatches)")
    ax_loss.plot(data["epoch"], data["train_loss"], "o-", label="train")
    ax_loss.plot(data["epoch"], data["test_loss"], "s-", label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss", yscale="log")
    ax_acc.plot(data["epoch"], data["train_acc"], "o-", label="train")
    ax_acc.plot(data["epoch"], data["test_acc"], "s-", label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))
