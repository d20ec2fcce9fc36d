"""Argument parsing that reports mistakes in one line (exit 2), never a usage dump."""

import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def number_option(convert, accept, wanted):
    """An argparse type: ``convert`` the text, keep it if ``accept`` says so, else say what was wanted."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or value != value or not accept(value):  # value != value: NaN
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value

    parse.__name__ = wanted
    return parse


INF = float("inf")
# Counts (epochs, batches, steps, seeds) fit a C int: larger ones reach numpy, ctypes or the BLAS
# as overflow tracebacks, and no run needs them.
MAX_COUNT = 2**31 - 1
positive_int = number_option(int, lambda v: 1 <= v <= MAX_COUNT, f"a positive integer up to {MAX_COUNT:,}")
non_negative_int = number_option(int, lambda v: 0 <= v <= MAX_COUNT, f"an integer from 0 to {MAX_COUNT:,}")
# Timed rounds (profile --steps, bench --repeats, their warm-ups): medians settle long before
# this, and a count past it would only make the command run for days.
MAX_TIMING_ROUNDS = 10_000
timing_rounds = number_option(
    int, lambda v: 1 <= v <= MAX_TIMING_ROUNDS, f"a positive integer up to {MAX_TIMING_ROUNDS:,}"
)


def thread_count(text):
    """``--threads N``: 1 to THREADS_PER_CORE times the cores this process may use."""
    from fastnet.threads import THREADS_PER_CORE, most_threads

    most = most_threads()
    return number_option(
        int, lambda v: 1 <= v <= most, f"a thread count from 1 to {most} ({THREADS_PER_CORE} per usable core)"
    )(text)


positive_float = number_option(float, lambda v: 0 < v < INF, "a positive number")
non_negative_float = number_option(float, lambda v: 0 <= v < INF, "a number >= 0")
fraction = number_option(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
