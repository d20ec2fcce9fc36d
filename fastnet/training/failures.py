"""How a run stops when things go wrong: divergence (non-finite or exploding loss) and
SIGINT/SIGTERM (finish the step, save, print the resume command; a second signal stops at once).

Mixed into ``Trainer``: it needs the run's position, optimizer, checkpoint saving and history.
"""
from __future__ import annotations

import signal

from fastnet import catalog
from fastnet.errors import DivergenceError
from fastnet.training.explosion import explosion_limit, loss_problem
from fastnet.training.stopping import TrainingInterrupted, resume_command, stop_signals


class StopsAndFailures:
    launcher, resume_options = (), ()  # what a resume command adds (mpiexec -n N, --distributed)

    def explosion_limit(self) -> float:
        """A mean loss above this has blown up (see fastnet.training.explosion)."""
        return explosion_limit(self.start_loss, getattr(self.net, "output_size", catalog.CLASSES))

    def _loss_problem(self, loss):
        return loss_problem(loss, self.explosion_limit())

    def _diverged(self, value, interval=1, where=None):
        if where is None and interval > 1:
            where = f"epoch {self.epoch + 1}, within steps {self.step - interval + 1}-{self.step}"
        elif where is None:
            where = f"epoch {self.epoch + 1}, step {self.step + 1}"
        what = value if isinstance(value, str) else f"loss became {value}"
        kept = (f"; the last good checkpoint ({self._last_good_where}) is kept: {self.last_good_checkpoint}"
                if self.last_good_checkpoint else "; no checkpoint was saved")
        lr = getattr(self.optimizer, "lr", None)
        hint = f"lower the learning rate (now {lr:g}), e.g. --lr {lr / 10:g}" if lr else "lower the learning rate"
        raise DivergenceError(f"training diverged: {what} at {where}; {hint}{kept}")

    def _check_stop(self):
        if self._stop_signal is not None:
            self._interrupted()

    def _interrupted(self):
        name = signal.Signals(self._stop_signal).name
        code = 128 + int(self._stop_signal)
        where = self.position()
        path = self.save_checkpoint()
        if path is None:
            raise TrainingInterrupted(f"interrupted by {name} at {where}; no checkpoint (no output folder)", code)
        self.history.save(self.out_dir / "history.json", config=self.config, backend=self.backend.name)
        if self.epoch >= self.epochs:
            raise TrainingInterrupted(f"interrupted by {name} after the last epoch; the run is complete "
                                      f"and its checkpoint saved: {path} (to train further: "
                                      f"{self._resume_command(path, '--epochs', 'N')})", code)
        raise TrainingInterrupted(f"interrupted by {name} at {where}; checkpoint saved; "
                                  f"resume with: {self._resume_command(path)}", code)

    def _resume_command(self, path, *extra):
        return resume_command(path, *extra, *self.resume_options, launcher=self.launcher)

    def _interrupts(self):
        """SIGINT/SIGTERM finish the current step, then save and stop; a second one stops at once."""
        return stop_signals(self._on_signal)

    def _on_signal(self, signum):
        self._stop_signal = signum
