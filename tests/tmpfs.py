"""A real small disk for the disk-full tests: a tmpfs mounted under the test's folder (needs
root; the test skips with the reason where it cannot be mounted)."""

import contextlib
import subprocess

import pytest


@contextlib.contextmanager
def small_tmpfs(tmp_path, size):
    """A tmpfs of ``size`` (e.g. "96k") at ``tmp_path/disk``, unmounted afterwards."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs here: {exc}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root and permission): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30)
