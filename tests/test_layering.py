"""Imports run down the architecture only (README, "Architecture"): a lower floor never imports a
higher one, not even inside a function, and the training package leaves argparse to the command."""

import re
from pathlib import Path

FASTNET = Path(__file__).resolve().parents[1] / "fastnet"

# Lower numbers are lower floors; a module may import its own floor or below.
FLOORS = {
    "errors": 0,
    "annotations": 0,  # the type aliases of the public signatures
    "portable": 0,
    "cgroups": 0,
    "words": 0,
    "files": 1,
    "atomic": 1,
    "registry": 1,
    "host_memory": 1,
    "shapes": 1,
    "threads": 1,
    "blas": 1,
    "optim": 1,
    "gradcheck": 1,
    "best_epoch": 1,
    "catalog": 2,
    "validation": 2,  # the names and defaults, read everywhere; the value checks
    "npz": 2,
    "backends": 2,
    "schedules": 2,
    "datasets": 2,
    "plots": 2,
    "serialization": 3,
    "layers": 3,
    "tensorboard_log": 3,
    "nets": 4,
    "evaluation": 6,
    "profiling": 6,
    "distributed": 7,
    "parity": 7,
    "training": 8,
    "benchmarking": 9,
    "loading": 9,
    "interop": 9,
    "serve": 9,  # nets in and out: read whole runs
    "images": 2,
    "probabilities": 1,
    "book": 5,
    "cli": 10,
    "__main__": 10,
    "__init__": 10,
}
# Imports allowed upward, inside functions: the catalog's builders make the nets it names.
ALLOWED = {
    ("catalog", "nets"),
    ("loading", "cli"),  # fastnet.load reads a run through cli.common.read_run; to move down
    ("serialization", "interop"),
    ("annotations", "backends"),  # under TYPE_CHECKING only: the Backend class in BackendLike
}  # parameter files describe their layers via interop; likewise
IMPORT = re.compile(r"^\s*(?:from (fastnet(?:\.\w+)*) import ([\w, ()\n]+?)$|import (fastnet(?:\.\w+)+))", re.M)


def imported_packages(text):
    for dotted, names, plain in IMPORT.findall(text):
        parts = (dotted or plain).split(".")
        if len(parts) > 1:
            yield parts[1]
        else:  # from fastnet import catalog, ...
            yield from (n.strip(" ()") for n in names.split(",") if n.strip(" ()"))


def test_no_module_imports_a_higher_floor():
    upward = []
    for path in FASTNET.rglob("*.py"):
        package = path.relative_to(FASTNET).parts[0].removesuffix(".py")
        assert package in FLOORS, f"{package} has no floor in this test's map; give it one"
        for target in imported_packages(path.read_text()):
            if target != package and FLOORS.get(target, -1) > FLOORS[package] and (package, target) not in ALLOWED:
                upward.append(f"{path.relative_to(FASTNET.parent)} imports fastnet.{target}")
    assert not upward, upward


def test_the_training_package_imports_no_argparse_and_nothing_reaches_into_a_net():
    for path in (FASTNET / "training").rglob("*.py"):
        assert not re.search(r"^\s*(import argparse|from argparse)", path.read_text(), re.M), path
    for path in FASTNET.rglob("*.py"):
        if path.parent.name != "nets":
            text = path.read_text()
            assert "_param_index" not in text and "_dropout_layers" not in text, path
            assert not re.search(r"layer\.__dict__", text), path
