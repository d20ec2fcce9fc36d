"""The divergence guard: a non-finite or exploding loss stops the run with one line naming the
epoch and step, the learning rate to try, and the last good checkpoint (left as it was)."""

from __future__ import annotations

import math

from fastnet import catalog
from fastnet.errors import DivergenceError
from fastnet.training.explosion import explosion_limit, loss_problem
from fastnet.training.extension import Extension


class DivergenceGuard(Extension):
    """Checks every minibatch loss on a CPU (on a GPU reading it would force a sync: only the
    logged interval means there), and the training loss of each epoch's evaluation.

    Keeps ``start_loss``, the untrained net's first minibatch loss: what "exploded" means.
    """

    def __init__(self):
        self.start_loss = None

    def limit(self, trainer) -> float:
        """A mean loss above this has blown up (see fastnet.training.explosion)."""
        return explosion_limit(self.start_loss, getattr(trainer.net, "output_size", catalog.CLASSES))

    def after_step(self, trainer):
        if trainer.backend.device == "cpu" and not math.isfinite(float(trainer.net.last_loss)):
            diverged(trainer, float(trainer.net.last_loss), where=f"epoch {trainer.epoch + 1}, step {trainer.step}")
        if self.start_loss is None:
            self.start_loss = float(trainer.net.last_loss)  # once per run: one sync on a GPU
        mean = trainer.interval_mean
        if mean is not None and (not math.isfinite(mean) or mean > self.limit(trainer)):
            n = trainer.interval_length
            where = (
                f"epoch {trainer.epoch + 1}, within steps {trainer.step - n + 1}-{trainer.step}"
                if n > 1
                else f"epoch {trainer.epoch + 1}, step {trainer.step}"
            )
            diverged(trainer, loss_problem(mean, self.limit(trainer)), where=where)

    def end_epoch(self, trainer):
        loss = trainer.observation["train_loss"]
        if not math.isfinite(loss) or loss > self.limit(trainer):
            diverged(
                trainer, loss_problem(loss, self.limit(trainer)), where=f"the evaluation after epoch {trainer.epoch}"
            )

    def state(self) -> dict:
        return {"start_loss": self.start_loss}

    def load_state(self, trainer, progress, source=None):
        self.start_loss = progress.get("start_loss")


def diverged(trainer, value, where):
    """Raise the DivergenceError of ``value`` (a loss, or what went wrong) at ``where``."""
    what = value if isinstance(value, str) else f"loss became {value}"
    kept = (
        f"; the last good checkpoint ({trainer.last_good_where}) is kept: {trainer.last_good_checkpoint}"
        if trainer.last_good_checkpoint
        else "; no checkpoint was saved"
    )
    raise DivergenceError(f"training diverged: {what} at {where}; {lr_hint(trainer)}{kept}")


def lr_hint(trainer) -> str:
    """A learning rate to try: a tenth of the run's, but no higher than a rate known to train.

    A tenth alone was often not enough (--lr 1e6 suggested 1e5, which diverged as well).  Known
    to train: the net's recipe rate with the recipe's optimizer, else the optimizer's own default.
    """
    lr = trainer.config.get("lr", getattr(trainer.optimizer, "lr", None))  # the base rate, not a warm-up's
    if not lr:
        return "lower the learning rate"
    tenth, (known, whose) = lr / 10, known_good_lr(trainer)
    if known is not None and tenth > known:
        return f"lower the learning rate (now {lr:g}), e.g. --lr {known:g} ({whose})"
    return f"lower the learning rate (now {lr:g}), e.g. --lr {tenth:g}"


def known_good_lr(trainer):
    """(rate, whose) that trains this net with this optimizer, or (None, "") when none is known."""
    import inspect

    net, optimizer = trainer.config.get("net"), trainer.config.get("optimizer")
    entry = catalog.NETS.get(net)
    if entry is not None and entry.recipe.optimizer == optimizer:
        return entry.recipe.lr, f"the {net} recipe's rate"
    default = inspect.signature(type(trainer.optimizer).__init__).parameters.get("lr")
    if default is not None and isinstance(default.default, float):
        return default.default, f"{type(trainer.optimizer).__name__}'s default rate"
    return None, ""
