"""Peak resident memory of work done in a fresh child process.

The peak is read from the child's own ``VmHWM`` (Linux): unlike ``ru_maxrss``, which keeps the
high-water mark across ``fork``/``exec`` and so would include whatever pytest held at the time,
it counts only the memory the child itself touched.
"""

import subprocess
import sys
import textwrap

from fastnet_cli import REPO, cli_env

MiB = 1 << 20

REPORT = """
def _peak_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
"""


def python_peak(code, cwd, catch="FastnetError", timeout=300):
    """Run ``code``; a ``catch`` exception is printed.  Returns (printed text, peak bytes)."""
    script = REPORT + textwrap.dedent("""
        import sys
        sys.path.insert(0, {repo!r})
        from fastnet.errors import {catch}
        try:
        {code}
        except {catch} as exc:
            print(exc)
        print(_peak_bytes())
    """).format(repo=str(REPO), catch=catch, code=textwrap.indent(textwrap.dedent(code), "    "))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, env=cli_env(cwd), timeout=timeout
    )
    assert result.returncode == 0, result.stderr
    *printed, peak = result.stdout.strip().splitlines()
    return "\n".join(printed), int(peak)


def cli_peak(args, cwd, timeout=300):
    """``fastnet *args`` as the command runs it; returns (exit code, stderr lines, peak bytes)."""
    peak_file = cwd / "peak"
    script = REPORT + textwrap.dedent("""
        import sys
        from fastnet.cli.main import main
        try:
            code = main({args!r})
        finally:
            with open({peak!r}, "w") as f:
                f.write(str(_peak_bytes()))
        sys.exit(code)
    """).format(args=[str(a) for a in args], peak=str(peak_file))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=cwd, env=cli_env(cwd), timeout=timeout
    )
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    return result.returncode, lines, int(peak_file.read_text())
