"""MPICH's launcher banner ("BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES"), held back.

Under ``fastnet train --ranks N`` the launcher's own line names the dead rank; hydra's banner
may name another process (a survivor it killed), so it is taken out of the relayed output and
only its exit string is kept.  Everything else passes unchanged, partial lines (a progress bar's
carriage returns) included.
"""

from __future__ import annotations

import re

_BANNER = re.compile(
    rb"^(=+|=   .*|YOUR APPLICATION TERMINATED WITH THE EXIT STRING: .*"
    rb"|This typically refers to a problem with your application\.|Please see the FAQ page for debugging suggestions)$"
)
_EXIT_STRING = re.compile(rb"EXIT STRING: (.*)$")


class BannerFilter:
    """``feed(chunk)`` returns what to print of the launcher's stdout; ``exit_string`` is what the
    banner said ("Killed (signal 9)"), if it came."""

    def __init__(self):
        self._line = b""  # the start of a line not yet known to be the banner's
        self._mid_line = False  # part of this line is already printed: it is not the banner's
        self._blank = False  # a blank line held back: the banner starts with one
        self.exit_string: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        out = []
        self._line += chunk
        while b"\n" in self._line:
            line, self._line = self._line.split(b"\n", 1)
            out.append(self._whole(line))
        if self._line and not self._mid_line and not self._could_be_banner(self._line):
            out.append(self._take_blank() + self._line)
            self._line, self._mid_line = b"", True
        return b"".join(out)

    def finish(self) -> bytes:
        rest = self._take_blank() + self._line
        self._line = b""
        return rest

    def _whole(self, line: bytes) -> bytes:
        if self._mid_line:
            self._mid_line = False
            return line + b"\n"
        if _BANNER.match(line):
            self._blank = False
            found = _EXIT_STRING.search(line)
            if found:
                self.exit_string = found.group(1).decode(errors="replace").strip()
            return b""
        if not line.strip(b"\r"):
            held, self._blank = self._take_blank(), True
            return held
        return self._take_blank() + line + b"\n"

    def _take_blank(self) -> bytes:
        held, self._blank = (b"\n" if self._blank else b""), False
        return held

    @staticmethod
    def _could_be_banner(start: bytes) -> bool:
        return any(
            phrase.startswith(start) or start.startswith(phrase)
            for phrase in (b"=", b"YOUR APPLICATION", b"This typically", b"Please see the FAQ")
        )
