"""The four-step loop, done well: minibatch, gradient, update, repeat.

The data sits on the backend's device, validated once; every epoch draws a fresh permutation
(batches without replacement); the loss logged is the one the gradient pass computed anyway.

When things go wrong, no work is lost:

- SIGINT/SIGTERM: the current step finishes, a checkpoint of it is saved, and
  ``TrainingInterrupted`` says how to resume; a second signal stops at once (``StopNow``).
  A signal that arrives during the end-of-epoch evaluation is honoured right after it.
- A non-finite loss raises ``DivergenceError`` naming the epoch and step; the checkpoint of
  the last finished epoch is left as it was (a non-finite net is never saved).
- Resuming from a checkpoint continues bitwise like the uninterrupted run on CPU backends:
  the permutation of each epoch comes from (seed, epoch), and the checkpoint carries the
  optimizer state, the dropout random state and the loss-logging interval.
"""
from __future__ import annotations

import math
import time
from contextlib import nullcontext
from pathlib import Path

import numpy

from fastnet.errors import InputError
from fastnet.threads import active_choice, threads_for, using_threads
from fastnet.training.checkpoint import save_checkpoint
from fastnet.training.config import TrainerConfig
from fastnet.training.evaluation import epoch_seed, evaluate
from fastnet.training.failures import StopsAndFailures
from fastnet.training.history import History
from fastnet.training.lr import resumed_schedule, run_schedule
from fastnet.training.lock import output_folder_lock
from fastnet.training.memory import check_batch_fits, largest_eval_batch
from fastnet.training.selection import Selection, save_best, split_off_validation
from fastnet.training.watch import TensorBoardWatch
from fastnet.training.stopping import StopNow, TrainingInterrupted

__all__ = ["StopNow", "Trainer", "TrainingInterrupted", "epoch_seed", "evaluate"]


class Trainer(StopsAndFailures):
    """Trains ``net`` with ``optimizer`` on (x_train, t_train), evaluating every epoch.

    How it runs is a ``TrainerConfig`` (``settings``), or its fields as keywords for the common
    case: ``Trainer(net, opt, x, t, epochs=2, batch_size=100, out_dir="runs/a")``; keywords
    override fields of ``settings``.  ``out_dir`` receives ``history.json`` and
    ``checkpoint.npz`` after every epoch (written atomically) and ``curves.png`` (titled
    ``title``) when the run completes; it is locked against a second run while ``fit`` runs.
    ``progress`` shows a tqdm bar; ``log`` (print by default) gets one line per epoch.  Before
    anything big is allocated, the batch is checked to fit in memory.
    """

    def __init__(self, net, optimizer, x_train, t_train, x_test=None, t_test=None,
                 settings: TrainerConfig | None = None, **options):
        settings = (settings or TrainerConfig()).with_options(**options)
        if x_train is None or getattr(x_train, "ndim", 0) < 1 or x_train.shape[0] == 0:
            raise InputError("x_train holds no samples; give at least one training sample")
        if x_test is not None and getattr(x_test, "ndim", 0) >= 1 and x_test.shape[0] == 0:
            raise InputError("x_test holds no samples; give test samples or none (x_test=None)")
        self.settings = settings
        self.net = net
        self.optimizer = optimizer
        self.backend = net.backend
        self.epochs = settings.epochs
        self.batch_size = settings.batch_size
        self.seed = settings.seed
        self.eval_batch_size = settings.eval_batch_size
        self.out_dir = Path(settings.out_dir) if settings.out_dir is not None else None
        self.progress = settings.progress
        self.log = settings.log or (lambda *_: None)
        self.log_every = settings.log_every
        self.config = dict(settings.record)
        self.title = settings.title
        if settings.check_memory:
            on_device = self.backend.device != "cpu"
            data_bytes = sum(getattr(a, "nbytes", 0) for a in (x_train, t_train, x_test, t_test)) if on_device else 0
            fit = check_batch_fits(net, tuple(x_train.shape[1:]), min(self.batch_size, x_train.shape[0]),
                                   data_bytes, free=settings.free_memory,
                                   optimizer_slots=len(getattr(optimizer, "slots", ())))
            if fit is not None:
                _need, per_sample, budget = fit
                self.eval_batch_size = largest_eval_batch(per_sample, budget, data_bytes, self.eval_batch_size)
        # Validation (--val-split) is held out of the training set; see fastnet.training.selection.
        x_train, t_train, x_val, t_val = split_off_validation(x_train, t_train, settings.val_split, self.seed)
        self.x_train, self.t_train = self._to_device(x_train, t_train, "train")
        self.x_val, self.t_val = self._to_device(x_val, t_val, "val") if x_val is not None else (None, None)
        self.selection = Selection(settings.early_stop, settings.keep_best)
        self.schedule = run_schedule(settings, optimizer.lr, self.steps_per_epoch)  # None: constant
        self.watch = TensorBoardWatch.open(settings)  # None without --tensorboard
        self.x_test, self.t_test = (self._to_device(x_test, t_test, "test") if x_test is not None
                                    else (None, None))
        self.history = History()
        self.epoch = 0          # epochs finished
        self.step = 0           # steps finished in the current epoch
        self.iteration = 0      # steps finished in the whole run
        self._interval_loss = 0.0   # summed minibatch losses not yet logged
        self._interval_steps = 0
        self.last_good_checkpoint = None
        self._last_good_where = ""
        self._stop_signal = None
        self.after_epoch = None  # called with the trainer after each epoch (fastnet train --profile)
        self.start_loss = None      # the untrained net's first minibatch loss: what "exploded" means

    # --- data ---------------------------------------------------------------------------------
    def _to_device(self, x, t, split):
        """Move a split to the backend once and validate it once; steps then skip the checks."""
        if x is None or t is None:
            raise InputError(f"x_{split} and t_{split} must be given together")
        x = self.backend.asarray(x)
        t = self.backend.asarray(t)
        if x.dtype.kind == "f" and x.dtype != self.net.dtype:
            x = x.astype(self.net.dtype)
        self.net.check_inputs(x, t, f"x_{split}", f"t_{split}")
        return x, t

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.x_train.shape[0] / self.batch_size)

    # --- resuming -------------------------------------------------------------------------------
    def restore_progress(self, progress: dict, history: dict, source=None):
        """Continue where a checkpoint (``source``, the file it came from) left off."""
        self.epoch = int(progress["epoch"])
        self.step = int(progress["step"])
        self.iteration = int(progress["iteration"])
        if self.step > self.steps_per_epoch:
            raise InputError(f"the checkpoint is at step {self.step} of an epoch, but this run has "
                             f"only {self.steps_per_epoch} steps per epoch (different data or batch size)")
        self._interval_loss = float(progress.get("interval_loss", 0.0))
        self._interval_steps = int(progress.get("interval_steps", 0))
        self.start_loss = progress.get("start_loss")
        self.history = History(history)
        self.selection.load(progress.get("selection"), self.epoch, source)
        self.schedule = resumed_schedule(progress.get("schedule"), self.schedule, self.optimizer.lr,
                                         self.epochs, self.steps_per_epoch, source, say=self.log)
        if source is not None:
            self.last_good_checkpoint = Path(source)
            self._last_good_where = self.position()

    def _progress(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "iteration": self.iteration,
                "interval_loss": float(self._interval_loss), "interval_steps": self._interval_steps,
                "start_loss": self.start_loss, "selection": self.selection.state(),
                **({"schedule": self.schedule.to_dict()} if self.schedule is not None else {})}

    def position(self) -> str:
        """Where the run stands, in words ("epoch 2, step 30/100", "end of epoch 3")."""
        if self.step == 0:
            return f"end of epoch {self.epoch}" if self.epoch else "start"
        return f"epoch {self.epoch + 1}, step {self.step}/{self.steps_per_epoch}"

    def save_checkpoint(self, path=None):
        """Save the run's state; a net with non-finite values is never saved (it would not load)."""
        path = path or self.checkpoint_path
        if path is None:
            return None
        xp = self.backend.xp
        for key, value in self.net.state_arrays().items():
            if not bool(xp.isfinite(value).all()):
                self._diverged(f"{key} holds non-finite values", where=self.position())
        save_checkpoint(path, self.net, self.optimizer, self._progress(), self.config,
                        self.history.to_dict())
        self.last_good_checkpoint, self._last_good_where = Path(path), self.position()
        return path

    @property
    def checkpoint_path(self):
        return None if self.out_dir is None else self.out_dir / "checkpoint.npz"

    @property
    def curves_path(self):
        return None if self.out_dir is None else self.out_dir / "curves.png"

    # --- the loop ---------------------------------------------------------------------------------
    def fit(self) -> History:
        """Train to the last epoch; the output folder is held against other runs meanwhile.

        The BLAS, numba and convolution threads follow ``fastnet.threads``' policy for this net
        and batch, unless the caller chose already (inside ``using_threads``, as the command and
        each rank of a distributed run do).
        """
        with output_folder_lock(self.out_dir, say=self.log), self._thread_policy():
            return self._fit()

    def _thread_policy(self):
        if active_choice() is not None:
            return nullcontext()
        return using_threads(threads_for(self.net, self.x_train.shape[1:], self.batch_size))

    def _fit(self) -> History:
        self._stop_signal = None
        # The data was checked on arrival.  Overflow on the way to a non-finite loss is reported
        # once, by _diverged, not as a stream of RuntimeWarnings.
        with self.net.trusted_inputs(), self._interrupts(), \
                numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while self.epoch < self.epochs and not self.selection.should_stop:
                self._check_stop()
                self._run_epoch()
            self._check_stop()
        self.selection.report_stop(self.epoch < self.epochs, say=self.log)
        TensorBoardWatch.close_if_open(self.watch)
        if self.out_dir is not None:
            from fastnet.training.plot import plot_history

            plot_history(self.history, self.curves_path, title=self.title)
        return self.history

    def _run_epoch(self):
        from tqdm.auto import tqdm

        net, opt, bs = self.net, self.optimizer, self.batch_size
        n = self.x_train.shape[0]
        perm = self.backend.rng(epoch_seed(self.seed, self.epoch)).permutation(n)
        # On a GPU, reading the loss forces a sync: only do it once per logging interval.
        check_every_step = self.backend.device == "cpu"
        # disable=None: a bar on a terminal, none in a log file (the epoch lines still come).
        bar = tqdm(total=self.steps_per_epoch, initial=self.step, unit="batch", leave=False,
                   desc=f"epoch {self.epoch + 1}/{self.epochs}",
                   disable=None if self.progress else True, dynamic_ncols=True)
        self.backend.synchronize()
        started = time.perf_counter()
        first_step = self.step
        try:
            while self.step < self.steps_per_epoch:
                idx = perm[self.step * bs:(self.step + 1) * bs]
                grads = self.step_gradient(idx)
                if check_every_step and not math.isfinite(float(net.last_loss)):
                    self._diverged(float(net.last_loss))
                if self.start_loss is None:
                    self.start_loss = float(net.last_loss)  # once per run: one sync on a GPU
                if self.schedule is not None:
                    self.schedule.apply(opt)
                opt.update(net.params, grads)
                self._interval_loss = self._interval_loss + net.last_loss
                self._interval_steps += 1
                self.step += 1
                self.iteration += 1
                bar.update(1)
                if self._interval_steps == self.log_every or self.step == self.steps_per_epoch:
                    mean = float(self._interval_loss) / self._interval_steps
                    if not math.isfinite(mean) or mean > self.explosion_limit():
                        self._diverged(self._loss_problem(mean), self._interval_steps)
                    self.history.add_step_loss(self.iteration, mean)
                    self.history.add_step_lr(self.iteration, opt.lr)
                    rate = (self.step - first_step) * bs / max(time.perf_counter() - started, 1e-9)
                    bar.set_postfix(loss=f"{mean:.4f}", samples_s=f"{rate:,.0f}")
                    self._interval_loss, self._interval_steps = 0.0, 0
                self._check_stop()
        finally:
            bar.close()
        self.backend.synchronize()
        seconds = time.perf_counter() - started
        self._end_epoch(seconds, (self.step - first_step) * bs)

    def step_gradient(self, idx):
        """The gradient of the training rows ``idx`` (a RankTrainer computes only its share)."""
        return self.net.gradient(self.x_train[idx], self.t_train[idx])

    def evaluate_set(self, x, t):
        return evaluate(self.net, x, t, self.eval_batch_size)

    def _end_epoch(self, seconds, samples):
        samples = min(samples, self.x_train.shape[0])
        train_loss, train_acc = self.evaluate_set(self.x_train, self.t_train)
        test_loss, test_acc = (self.evaluate_set(self.x_test, self.t_test)
                               if self.x_test is not None else (None, None))
        val_loss, val_acc = (self.evaluate_set(self.x_val, self.t_val)
                             if self.x_val is not None else (None, None))
        if not math.isfinite(train_loss) or train_loss > self.explosion_limit():
            self._diverged(self._loss_problem(train_loss), where=f"the evaluation after epoch {self.epoch + 1}")
        self.epoch += 1
        self.step = 0
        self.history.add_epoch(epoch=self.epoch, train_loss=train_loss, train_acc=train_acc,
                               test_loss=test_loss, test_acc=test_acc, epoch_seconds=seconds,
                               samples_per_second=samples / max(seconds, 1e-9), val_loss=val_loss,
                               val_acc=val_acc, lr=self.optimizer.lr)
        improved = val_acc is not None and self.selection.observe(self.epoch, val_loss, val_acc)
        line = (f"epoch {self.epoch}/{self.epochs}: train loss {train_loss:.4f} acc {train_acc:.4f}")
        line += Selection.describe(val_loss, val_acc, improved)
        if test_acc is not None:
            line += f", test loss {test_loss:.4f} acc {test_acc:.4f}"
        if self.out_dir is not None:
            self.save_checkpoint()
            if improved and self.selection.keep_best:
                save_best(self)
            self.history.save(self.out_dir / "history.json", config=self.config,
                              backend=self.backend.name)
        # Logged after saving: an epoch announced as done has its checkpoint on disk.
        self.log(line + f" ({seconds:.1f} s, {samples / max(seconds, 1e-9):,.0f} samples/s)")
        if self.watch is not None:
            self.watch.epoch(self)
        if self.after_epoch is not None:
            self.after_epoch(self)
