"""The four-step loop, done well: minibatch, gradient, update, repeat.

The data sits on the backend's device, validated once; every epoch draws a fresh permutation
(batches without replacement); the loss logged is the one the gradient pass computed anyway.
The loop itself only counts: a *step* object makes each update (``fastnet.training.steps``:
one process, or one rank of a data-parallel job) and *extensions* do everything else at the
loop's named moments (``fastnet.training.extension``): the checkpoint, history files, model
selection, divergence guard, TensorBoard, the progress bar and the epoch lines.

When things go wrong, no work is lost:

- SIGINT/SIGTERM: the current step finishes, a checkpoint of it is saved, and
  ``TrainingInterrupted`` says how to resume; a second signal stops at once (``StopNow``).
  A signal that arrives during the end-of-epoch evaluation is honoured right after it.
- A non-finite loss raises ``DivergenceError`` naming the epoch and step; the checkpoint of
  the last finished epoch is left as it was (a non-finite net is never saved).
- Resuming from a checkpoint continues bitwise like the uninterrupted run on CPU backends:
  the permutation of each epoch comes from (seed, epoch), and the checkpoint carries the
  optimizer state, the dropout random state, the loss-logging interval and every extension's
  state.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy

from fastnet.annotations import Array, PathLike
from fastnet.optim import Optimizer
from fastnet.profiling.thread_choice import threads_for
from fastnet.threads import ThreadChoice, active_choice, using_threads
from fastnet.training.config import TrainerConfig
from fastnet.training.evaluation import epoch_seed, evaluate
from fastnet.training.extension import Extension
from fastnet.training.history import History
from fastnet.training.lock import output_folder_lock
from fastnet.training.placing import check_splits, eval_batch_that_fits, place_splits, train_eval_sample
from fastnet.training.standard import standard_extensions
from fastnet.training.steps import LocalStep
from fastnet.training.stopping import StopNow, TrainingInterrupted, interruption, stop_signals

__all__ = ["StopNow", "Trainer", "TrainingInterrupted", "epoch_seed", "evaluate"]

_E = TypeVar("_E")

if TYPE_CHECKING:
    from fastnet.schedules import Schedule
    from fastnet.training.selection import ModelSelection


class Trainer:
    """Trains ``net`` with ``optimizer`` on (x_train, t_train), evaluating every epoch.

    How it runs is a ``TrainerConfig`` (``settings``), or its fields as keywords for the common
    case: ``Trainer(net, opt, x, t, epochs=2, batch_size=100, out_dir="runs/a")``; keywords
    override fields of ``settings``.  ``out_dir`` receives ``history.json`` and
    ``checkpoint.npz`` after every epoch (written atomically) and ``curves.png`` (titled
    ``title``) when the run completes; it is locked against a second run while ``fit`` runs.
    ``progress`` shows a tqdm bar; ``log`` (print by default) gets one line per epoch.  Before
    anything big is allocated, the batch is checked to fit in memory.

    ``step`` makes each update (default: ``LocalStep()``, this process alone); ``extensions``
    (or ``trainer.extend(ext)``) are called after the standard ones at the loop's moments.

    Parameters
    ----------
    net : Sequential
        The net to train, on its backend.
    optimizer : Optimizer
        Updates the net's parameters (``fastnet.optim``).
    x_train, t_train : array
        Training images and labels (host or backend arrays; moved to the net's backend once).
    x_test, t_test : array or None
        A test set evaluated after every epoch; None for none.
    settings : TrainerConfig or None
        How the loop runs; None for the defaults.
    step : LocalStep or None
        Makes each update; None for ``LocalStep()``.
    extensions : iterable of Extension
        Called after the standard extensions at the loop's moments.
    **options
        ``TrainerConfig`` fields, overriding those of ``settings``.

    Raises
    ------
    InputError
        For an unknown option, a setting out of range or data that does not fit the net.
    ResourceError
        When the batch would not fit in the memory there is (``check_memory``).

    Examples
    --------
    >>> from fastnet.datasets import load_dataset
    >>> from fastnet.nets import TwoLayerNet
    >>> from fastnet.optim import SGD
    >>> data = load_dataset("sample")
    >>> net = TwoLayerNet(784, 50, 10, backend="numpy", seed=0)
    >>> trainer = Trainer(net, SGD(lr=0.1), data.x_train[:1000], data.t_train[:1000],
    ...                   epochs=1, batch_size=100, progress=False, log=None)
    >>> history = trainer.fit()
    >>> trainer.epoch, trainer.iteration
    (1, 10)
    """

    # Set as the run goes (declared here for readers and the type checker).
    observation: dict[str, Any]
    interval_mean: float | None
    interval_length: int | None
    last_good_checkpoint: Path | None
    stopped_checkpoint: Path | None
    _stop_signal: int | None

    def __init__(
        self,
        net: Any,
        optimizer: Optimizer,
        x_train: Array,
        t_train: Array,
        x_test: Array | None = None,
        t_test: Array | None = None,
        settings: TrainerConfig | None = None,
        step: LocalStep | None = None,
        extensions: Iterable[Extension] = (),
        **options: Any,
    ):
        settings = (settings or TrainerConfig()).with_options(**options)
        check_splits(x_train, x_test)
        self.settings, self.net, self.optimizer, self.backend = settings, net, optimizer, net.backend
        self.epochs, self.batch_size, self.seed = settings.epochs, settings.batch_size, settings.seed
        self.out_dir = Path(settings.out_dir) if settings.out_dir is not None else None
        self.log = settings.log or (lambda *_: None)
        self.config = dict(settings.record)
        self.eval_batch_size = eval_batch_that_fits(
            net, optimizer, settings, x_train, (x_train, t_train, x_test, t_test)
        )
        splits = place_splits(net, settings, x_train, t_train, x_test, t_test)
        (self.x_train, self.t_train), (self.x_val, self.t_val) = splits["train"], splits["val"]
        (self.x_test, self.t_test) = splits["test"]
        self.x_train_eval, self.t_train_eval = train_eval_sample(
            net, self.x_train, self.t_train, settings.train_eval, settings.seed
        )
        self.updater = step or LocalStep()
        self.updater.attach(self)
        self.history = History()
        self.epoch = 0  # epochs finished
        self.step = 0  # steps finished in the current epoch
        self.iteration = 0  # steps finished in the whole run
        self.interval_loss, self.interval_steps = 0.0, 0  # summed minibatch losses not yet logged
        self.interval_mean = self.interval_length = None  # the interval the last step closed
        self.observation = {}  # the last epoch's evaluation
        self.last_good_checkpoint, self.last_good_where = None, ""
        self.stopped_checkpoint = None  # what a signal's stop saved
        self._stop_signal = None
        self.extensions = standard_extensions(settings)
        for extension in extensions:
            self.extend(extension)

    def extend(self, extension: _E) -> _E:
        """Call ``extension`` at the loop's moments, after those already there; returns it."""
        self.extensions.append(extension)
        return extension

    def find(self, kind: type[_E]) -> _E | None:
        """The first extension of type ``kind``, or None."""
        return next((e for e in self.extensions if isinstance(e, kind)), None)

    @property
    def selection(self) -> ModelSelection | None:
        """The model-selection extension (validation, best epoch, early stop), if any."""
        from fastnet.training.selection import ModelSelection

        return self.find(ModelSelection)

    @property
    def schedule(self) -> Schedule | None:
        """The learning-rate schedule the step applies (None: a constant rate)."""
        return self.updater.schedule

    @property
    def steps_per_epoch(self) -> int:
        """Updates per epoch: the training rows divided by the batch size, rounded up."""
        return math.ceil(self.x_train.shape[0] / self.batch_size)

    @property
    def curves_path(self) -> Path | None:
        """Where ``curves.png`` is written (None without an output folder)."""
        return None if self.out_dir is None else self.out_dir / "curves.png"

    def position(self) -> str:
        """Where the run stands, in words ("epoch 2, step 30/100", "end of epoch 3")."""
        if self.step == 0:
            return f"end of epoch {self.epoch}" if self.epoch else "start"
        return f"epoch {self.epoch + 1}, step {self.step}/{self.steps_per_epoch}"

    # --- state -----------------------------------------------------------------------------------
    def progress(self) -> dict[str, Any]:
        """The run's position and every piece's state, as a checkpoint's ``progress`` holds it."""
        state = {
            "epoch": self.epoch,
            "step": self.step,
            "iteration": self.iteration,
            "interval_loss": float(self.interval_loss),
            "interval_steps": self.interval_steps,
        }
        for extension in self.extensions:
            state.update(extension.state())
        return {**state, **self.updater.state()}

    def restore_progress(
        self, progress: dict[str, Any], history: dict[str, Any], source: PathLike | None = None
    ) -> None:
        """Continue where a checkpoint (``source``, the file it came from) left off.

        Raises
        ------
        InputError
            When the checkpoint's position does not fit this run (other data or batch size).
        """
        from fastnet.errors import InputError

        self.epoch, self.step = int(progress["epoch"]), int(progress["step"])
        self.iteration = int(progress["iteration"])
        if self.step > self.steps_per_epoch:
            raise InputError(
                f"the checkpoint is at step {self.step} of an epoch, but this run has "
                f"only {self.steps_per_epoch} steps per epoch (different data or batch size)"
            )
        self.interval_loss = float(progress.get("interval_loss", 0.0))
        self.interval_steps = int(progress.get("interval_steps", 0))
        self.history = History(history)
        for extension in self.extensions:
            extension.load_state(self, progress, source)
        self.updater.load_state(self, progress, source)
        if source is not None:
            self.last_good_checkpoint, self.last_good_where = Path(source), self.position()

    # --- the loop ---------------------------------------------------------------------------------
    @property
    def thread_choice(self) -> ThreadChoice:
        """The BLAS and convolution threads ``fit`` runs with: the caller's choice in force
        (``using_threads``; a rank's share), else ``fastnet.threads``' policy for this net and
        batch (``threads`` setting: ``--threads``)."""
        return active_choice() or threads_for(self.net, self.x_train.shape[1:], self.batch_size, self.settings.threads)

    def fit(self) -> History:
        """Train to the last epoch; the output folder is held against other runs meanwhile."""
        with output_folder_lock(self.out_dir, say=self.log), using_threads(self.thread_choice):
            self._stop_signal = None
            self._call("start")
            try:
                # The data was checked on arrival.  Overflow on the way to a non-finite loss is
                # reported once, by the divergence guard, not as a stream of RuntimeWarnings.
                with (
                    self.net.trusted_inputs(),
                    stop_signals(self._on_signal),
                    numpy.errstate(over="ignore", invalid="ignore", divide="ignore"),
                ):
                    while self.epoch < self.epochs and not any(e.should_stop(self) for e in self.extensions):
                        self._check_stop()
                        self._run_epoch()
                    self._check_stop()
            except BaseException as exc:
                if isinstance(exc, StopNow):  # say what was not saved, and what is there
                    exc.explain(
                        self.position(),
                        self.last_good_checkpoint,
                        self.last_good_where,
                        self.updater.resume_options,
                        self.updater.launcher,
                    )
                if not isinstance(exc, TrainingInterrupted):
                    self._call("stop", "error")
                raise
            self._call("stop", "complete")
        return self.history

    def _run_epoch(self):
        perm = self.backend.rng(epoch_seed(self.seed, self.epoch)).permutation(self.x_train.shape[0])
        self.backend.synchronize()
        started, first_step = time.perf_counter(), self.step
        while self.step < self.steps_per_epoch:
            self.updater.update(self, perm[self.step * self.batch_size : (self.step + 1) * self.batch_size])
            self.interval_loss = self.interval_loss + self.net.last_loss
            self.interval_steps += 1
            self.step += 1
            self.iteration += 1
            self.interval_mean = self.interval_length = None
            if self.interval_steps == self.settings.log_every or self.step == self.steps_per_epoch:
                # On a GPU, reading the loss forces a sync: only once per logging interval.
                self.interval_mean = float(self.interval_loss) / self.interval_steps
                self.interval_length, self.interval_loss, self.interval_steps = self.interval_steps, 0.0, 0
            if self.interval_mean is not None:
                self.history.add_step_loss(self.iteration, self.interval_mean)
                self.history.add_step_lr(self.iteration, self.optimizer.lr)
            self._call("after_step")
            self._check_stop()
        self.backend.synchronize()
        self._end_epoch(time.perf_counter() - started, (self.step - first_step) * self.batch_size)

    def _end_epoch(self, seconds, samples):
        samples = min(samples, self.x_train.shape[0])
        ev = self.updater.evaluate
        train_loss, train_acc = ev(self, self.x_train_eval, self.t_train_eval)
        test_loss, test_acc = ev(self, self.x_test, self.t_test) if self.x_test is not None else (None, None)
        val_loss, val_acc = ev(self, self.x_val, self.t_val) if self.x_val is not None else (None, None)
        self.epoch += 1
        self.step = 0
        self.observation = dict(
            epoch=self.epoch,
            train_loss=train_loss,
            train_acc=train_acc,
            test_loss=test_loss,
            test_acc=test_acc,
            epoch_seconds=seconds,
            samples_per_second=samples / max(seconds, 1e-9),
            val_loss=val_loss,
            val_acc=val_acc,
            lr=self.optimizer.lr,
        )
        self.history.add_epoch(**self.observation)
        self._call("end_epoch")

    def _call(self, moment, *args):
        for extension in self.extensions:
            getattr(extension, moment)(self, *args)

    # --- stopping on a signal --------------------------------------------------------------------
    def _on_signal(self, signum):
        self._stop_signal = signum

    def _check_stop(self):
        signum = self.updater.agree_stop(self, self._stop_signal)
        if signum is None:
            return
        self._stop_signal, where = signum, self.position()
        self.stopped_checkpoint = None
        self._call("stop", "signal")
        raise interruption(
            signum,
            where,
            self.stopped_checkpoint,
            self.epoch >= self.epochs,
            self.updater.resume_options,
            self.updater.launcher,
        )
