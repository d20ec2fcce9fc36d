"""Argument parsing that reports mistakes in one line (exit 2), never a usage dump."""
import argparse
import sys


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)


def _number(convert, accept, wanted):
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
positive_int = _number(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: 0 < v < INF, "a positive number")
non_negative_float = _number(float, lambda v: 0 <= v < INF, "a number >= 0")
fraction = _number(float, lambda v: 0 <= v < 1, "a number in [0, 1)")
