"""The lazy backend registry: names, defaults, recorded reasons, and no eager imports."""

import json
import subprocess
import sys

import pytest

from fastnet.backends import (
    BACKEND_NAMES,
    Backend,
    availability,
    get_backend,
    get_default_backend,
    select_backend,
    set_default_backend,
)
from fastnet.errors import BackendUnavailable, InputError
from fastnet.layers import Relu


def run_python(code):
    """Run ``code`` in a fresh interpreter (module caches start empty) and parse its JSON output."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_unknown_backend_name_lists_the_choices():
    with pytest.raises(InputError, match="unknown backend 'tpu'; choose one of: auto, cupy, numba, numpy"):
        get_backend("tpu")
    with pytest.raises(ValueError, match="unknown backend"):
        set_default_backend("NumPy ")
    with pytest.raises(InputError, match="unknown backend"):
        select_backend("gpu")


def test_backend_must_be_a_name_or_object():
    with pytest.raises(InputError, match="not int"):
        get_backend(3)


def test_get_backend_returns_one_object_per_name():
    numpy_backend = get_backend("numpy")
    assert isinstance(numpy_backend, Backend) and numpy_backend.name == "numpy"
    assert get_backend("numpy") is numpy_backend
    assert get_backend(numpy_backend) is numpy_backend


def test_set_default_backend_changes_and_restores():
    original = get_default_backend()
    try:
        for name, reason in availability().items():
            if reason is None:
                assert set_default_backend(name) is get_backend(name)
                assert get_default_backend() is get_backend(name)
                assert get_backend() is get_backend(name)
                assert Relu().backend is get_backend(name)
    finally:
        set_default_backend(original)
    assert get_default_backend() is original


def test_availability_gives_none_or_a_reason():
    report = availability()
    assert list(report) == list(BACKEND_NAMES)
    assert report["numpy"] is None
    for name, reason in report.items():
        if reason is None:
            assert get_backend(name).name == name
        else:
            assert isinstance(reason, str) and reason.strip()
            with pytest.raises(BackendUnavailable, match=f"backend '{name}' is unavailable: .*"):
                get_backend(name)


def test_auto_picks_the_best_usable_and_explains_skips():
    report = availability()
    usable = [n for n in BACKEND_NAMES if report[n] is None]
    selection = select_backend("auto")
    assert selection.backend.name == usable[0]
    for name in BACKEND_NAMES[: BACKEND_NAMES.index(usable[0])]:
        assert selection.skipped[name] == report[name]
        assert report[name] in selection.message()


def test_missing_packages_are_recorded_as_reasons():
    """With numba and cupy unimportable, both are unavailable with a reason and auto falls to numpy."""
    result = run_python(
        "import sys, json\n"
        "sys.modules['numba'] = None; sys.modules['cupy'] = None  # makes 'import numba' fail\n"
        "from fastnet.backends import availability, select_backend, get_backend\n"
        "from fastnet.errors import BackendUnavailable\n"
        "report = availability()\n"
        "try:\n"
        "    get_backend('numba'); strict = None\n"
        "except BackendUnavailable as exc:\n"
        "    strict = str(exc)\n"
        "fallback = select_backend('numba')\n"
        "print(json.dumps({'report': report, 'strict': strict, 'auto': select_backend('auto').message(),\n"
        "                  'fallback': [fallback.backend.name, fallback.fell_back, fallback.message()]}))\n"
    )
    report = result["report"]
    assert report["numpy"] is None
    for name in ("numba", "cupy"):
        assert isinstance(report[name], str) and report[name]
    assert report["numba"] in result["strict"]
    assert result["auto"].startswith("backend: numpy (auto; skipped cupy: ")
    assert result["fallback"][:2] == ["numpy", True]
    assert "falling back to 'numpy'" in result["fallback"][2]


def test_importing_fastnet_imports_neither_numba_nor_cupy():
    loaded = run_python(
        "import sys, json\n"
        "import fastnet, fastnet.layers, fastnet.nets, fastnet.optim, fastnet.serialization, fastnet.gradcheck\n"
        "fastnet.get_backend('numpy')\n"
        "net = fastnet.nets.TwoLayerNet(4, 3, 2, seed=0)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'cupy', 'torch'))))\n"
    )
    assert loaded == []


def test_backends_and_communicators_share_one_lazy_registry_that_keeps_the_reason():
    import fastnet.backends
    import fastnet.distributed
    from fastnet.errors import BackendUnavailable
    from fastnet.registry import LazyRegistry

    assert isinstance(fastnet.backends._registry, LazyRegistry)
    assert isinstance(fastnet.distributed._registry, LazyRegistry)
    registry = LazyRegistry("widget", {"gone": "fastnet.no_such_module"})
    with pytest.raises(BackendUnavailable, match="widget 'gone' is unavailable: ModuleNotFoundError"):
        registry.load("gone")
    assert registry.reason("gone").startswith("ModuleNotFoundError: No module named 'fastnet.no_such_module'")
    assert "gone" not in registry.loaded
