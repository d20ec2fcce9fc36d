"""Build hook: a page that says ``{{ readme "## Heading" }}`` gets that README section (for the
title ``# fastnet``, the introduction before the first ``##``).

The README is the front page and the one source of the guide's prose; the site arranges its
sections as pages and adds the API reference generated from the code.
"""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
MARKER = re.compile(r'\{\{ readme "(#+ [^"]+)" \}\}')


def _section(heading: str) -> str:
    lines = README.read_text(encoding="utf-8").splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == heading)
    except StopIteration:
        raise ValueError(f"README.md has no section {heading!r}") from None
    end = next(
        (
            i
            for i in range(start + 1, len(lines))
            if lines[i].startswith("#")
            and len(lines[i]) - len(lines[i].lstrip("#")) <= max(level, 2)
            and not _in_code(lines, i)
        ),
        len(lines),
    )
    return "\n".join(lines[start + 1 : end])


def _in_code(lines, index) -> bool:
    return sum(line.startswith("```") for line in lines[:index]) % 2 == 1


def on_page_markdown(markdown, page, config, files):
    return MARKER.sub(lambda found: _section(found.group(1)), markdown)
