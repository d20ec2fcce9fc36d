"""Running the real ``fastnet`` command in a child process, as a user would.

The child imports the same fastnet as the tests, never downloads (the mirrors point at a
closed local port) and never reads the user's data cache.
"""

import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import fastnet

REPO = Path(fastnet.__file__).resolve().parents[1]
# Generous: only a hung child ever waits this long.
PATIENCE = 120


def cli_env(tmp_path=None, **extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["FASTNET_MNIST_MIRRORS"] = "http://127.0.0.1:9/"
    env["FASTNET_FASHION_MNIST_MIRRORS"] = "http://127.0.0.1:9/"
    env.pop("FASTNET_DATA", None)
    if tmp_path is not None:
        env["XDG_CACHE_HOME"] = str(Path(tmp_path) / "cache")
    env.update(extra)
    return env


def command(*args):
    return [sys.executable, "-m", "fastnet", *map(str, args)]


def run_cli(*args, tmp_path=None, cwd=None, preexec_fn=None):
    """Run ``fastnet *args`` to the end; returns the CompletedProcess (text output)."""
    return subprocess.run(
        command(*args),
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        cwd=cwd or tmp_path,
        env=cli_env(tmp_path),
        preexec_fn=preexec_fn,
    )


def stderr_lines(result):
    return [line for line in result.stderr.splitlines() if line.strip()]


class Child:
    """A running ``fastnet`` whose stdout lines can be waited for."""

    def __init__(self, *args, tmp_path=None):
        self.proc = subprocess.Popen(
            command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            env=cli_env(tmp_path),
        )
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def wait_for(self, prefix):
        """Block until the child prints a line starting with ``prefix``."""
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=1)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"child ended before printing {prefix!r}: {self.seen} {self.proc.stderr.read()}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line
        raise AssertionError(f"no line starting with {prefix!r} within {PATIENCE} s: {self.seen}")

    def finish(self):
        """Wait for the exit; returns (exit code, stderr text)."""
        try:
            code = self.proc.wait(timeout=PATIENCE)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return code, self.proc.stderr.read()
