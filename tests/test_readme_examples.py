"""The README's Python examples run as pasted."""

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block_after(marker: str) -> str:
    text = README.read_text()
    start = text.index(marker)
    return re.search(r"```python\n(.*?)```", text[start:], re.S).group(1)


def test_lego_example_runs_as_pasted(tmp_path):
    code = python_block_after("Build your own net like Lego")
    script = tmp_path / "lego.py"
    script.write_text(code)
    # A fresh interpreter, as a user pasting it would have; fastnet from this checkout.
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PYTHONPATH": str(README.parent), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "['W1', 'W2', 'b1', 'b2', 'beta1', 'gamma1']" in result.stdout


def test_callback_example_runs_as_pasted(tmp_path):
    code = python_block_after("A callback that logs every N steps")
    script = tmp_path / "callback.py"
    script.write_text(code)
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PYTHONPATH": str(README.parent), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    steps = [line for line in result.stdout.splitlines() if line.startswith("step ")]
    # The embedded sample's 10,000 images in batches of 100: 100 updates, one line every 5.
    assert [int(line.split()[1].rstrip(":")) for line in steps] == list(range(5, 101, 5))
    assert "epoch 1/1: train loss" in result.stdout  # the standard epoch line still comes
