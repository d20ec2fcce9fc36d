"""The learning-rate schedule of a run: built from its settings, set before every update, and
carried in its checkpoints.

A schedule is a function of the optimizer's update count (``fastnet.schedules``), so a resumed
run gets the same rates as the uninterrupted one from the restored optimizer alone.  The
schedule's length is fixed when the run starts: a run resumed with a larger ``--epochs`` keeps
the recorded schedule (it is not stretched, which would change the rates of the epochs already
trained); the updates beyond its end run at its final rate, and the run says so. A schedule
that ends at rate 0 (cosine without --min-lr) cannot be extended: those epochs would not train.
"""

from __future__ import annotations

from fastnet.errors import CheckpointError, InputError
from fastnet.schedules import Schedule, make_schedule
from fastnet.words import counted


def run_schedule(settings, base_lr, steps_per_epoch) -> Schedule | None:
    """The schedule ``settings`` (a TrainerConfig) asks for; None for the classic constant rate."""
    if settings.lr_schedule == "constant" and not settings.warmup_epochs:
        return None  # nothing to schedule: the optimizer's arithmetic stays exactly the classic one
    return make_schedule(
        settings.lr_schedule,
        base_lr,
        settings.epochs,
        steps_per_epoch,
        warmup_epochs=settings.warmup_epochs,
        step_epochs=settings.step_epochs,
        gamma=settings.lr_gamma,
        min_lr=settings.min_lr,
    )


def resumed_schedule(recorded, current, base_lr, epochs, steps_per_epoch, source, say=print):
    """The schedule of a run resumed from a checkpoint that recorded ``recorded``.

    The recorded length is kept; ``base_lr`` (the run's --lr, which a resume may change)
    replaces the recorded base rate.  ``say`` is told when the run now goes past the schedule.
    """
    if recorded is None:
        return current
    try:
        schedule = Schedule.from_dict({**recorded, "base_lr": base_lr})
    except (InputError, TypeError) as exc:
        raise CheckpointError(
            f"{source or 'the checkpoint'}: the recorded learning-rate schedule is not usable ({exc})"
        ) from None
    if schedule.name != "constant" and epochs * steps_per_epoch > schedule.total:
        recorded_epochs = counted(schedule.total / steps_per_epoch, "epoch")
        if schedule.lr_at(schedule.total) == 0:
            raise InputError(
                f"the {schedule.name} learning-rate schedule of {source or 'the checkpoint'} ends at "
                f"rate 0 after its {recorded_epochs}, so more epochs would not change the "
                f"weights; start a new run with --epochs {epochs} (or a --min-lr above 0)"
            )
        say(
            f"the {schedule.name} learning-rate schedule keeps its recorded length of "
            f"{recorded_epochs} ({schedule.total} updates); the epochs "
            f"after it run at {schedule.lr_at(schedule.total):g}"
        )
    return schedule
