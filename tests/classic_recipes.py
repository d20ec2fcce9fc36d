"""The classic recipes' trained weights, recorded once and compared within derived bounds.

Each recipe trains 2 epochs, seed 1, on the numpy backend in float32, as fastnet trained before
validation, schedules and the optimizer's weight decay existed ("mlp --weight-decay" was then the
mlp's own L2 term). The record keeps, for each array, its norm and a 64-number sketch (below), so a
change of the weights as a whole is seen without storing them.

Why a bound and not the bits: another CPU's BLAS kernel (OpenBLAS's SkylakeX, Haswell or
Sandybridge) adds the products of a matrix multiplication in another order, so the same recipe
trains weights that differ in their last bits. Each step's longest sum of k products then differs
by about sqrt(k) roundings (``tolerances.probable_gamma``); the recipes run a few steps, over which
such differences add up, so the arrays may differ by ``steps * 2 * probable_gamma(k)`` times their
norm. Measured on one machine the three kernels differ by at most a twentieth of that; a real
change of the recipe (its learning rate, weight decay, initialisation or data order) moves the
weights by thousands of times more.

Re-record (only when the recipes are meant to change) with
``OPENBLAS_CORETYPE=Haswell python tests/classic_recipes.py``.
"""

import json
import sys
from pathlib import Path

import numpy

RECORD = Path(__file__).resolve().parent / "data" / "classic_recipes.json"
COMMON = ["--dataset", "sample", "--backend", "numpy", "--quiet", "--epochs", "2", "--seed", "1"]
SKETCH_SIZE = 64

# name: (options, training steps, longest sum of products in one step)
# 500 images in batches of 100 for 2 epochs = 10 steps; 200 images = 4 steps. The longest sums: the
# first Affine's 784 inputs; SimpleConvNet's filter gradient, summed over 100 images x 24x24 pixels.
RECIPES = {
    "two-layer": (["--net", "two-layer", "--limit", "500"], 10, 784),
    "mlp-l2": (["--net", "mlp", "--limit", "500", "--weight-decay", "0.01"], 10, 784),
    "simple-conv": (["--net", "simple-conv", "--limit", "200"], 4, 100 * 24 * 24),
    "mlp-adam": (["--net", "mlp", "--limit", "500", "--optimizer", "adam", "--lr", "0.001"], 10, 784),
}


def sketch(array) -> numpy.ndarray:
    """A count sketch: each element added, with a sign, into one of 64 buckets.

    For any change D of the array, the sketch of D has about the norm of D (its expected square is
    exactly |D|^2), so comparing sketches compares the whole arrays. Bucket and sign come from
    Knuth's multiplicative hash of the element's index: fixed arithmetic, the same on every machine
    and numpy version.
    """
    flat = numpy.asarray(array, dtype=numpy.float64).ravel()
    hashed = (numpy.arange(flat.size, dtype=numpy.uint64) * numpy.uint64(2654435761)) & numpy.uint64(0xFFFFFFFF)
    bucket = (hashed >> numpy.uint64(26)).astype(numpy.intp)  # the top 6 of 32 bits: 64 buckets
    sign = 1.0 - 2.0 * ((hashed >> numpy.uint64(25)) & numpy.uint64(1)).astype(numpy.float64)
    return numpy.bincount(bucket, weights=sign * flat, minlength=SKETCH_SIZE)


def weights(checkpoint) -> dict:
    from fastnet.training.checkpoint import read_checkpoint

    arrays, _ = read_checkpoint(checkpoint)
    return {key: value for key, value in arrays.items() if not key.startswith("optim.")}


def describe(arrays) -> dict:
    return {
        key: {
            "shape": list(value.shape),
            "dtype": str(value.dtype),
            "norm": float(numpy.linalg.norm(value.astype(numpy.float64))),
            "sketch": sketch(value).tolist(),
        }
        for key, value in sorted(arrays.items())
    }


def recorded() -> dict:
    return json.loads(RECORD.read_text())["recipes"]


def record(workdir: Path) -> None:
    from fastnet_cli import run_cli

    from fastnet.blas import describe_blas

    recipes = {}
    for name, (options, _, _) in RECIPES.items():
        out = workdir / name
        result = run_cli("train", *COMMON, *options, "--out", out, tmp_path=workdir)
        assert result.returncode == 0, result.stderr
        recipes[name] = describe(weights(out / "checkpoint.npz"))
    RECORD.write_text(json.dumps({"recorded_with": describe_blas(), "recipes": recipes}, indent=1) + "\n")
    print(f"wrote {RECORD} ({describe_blas()})")


if __name__ == "__main__":
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    with tempfile.TemporaryDirectory() as scratch:
        record(Path(scratch))
