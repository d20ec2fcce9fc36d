"""The embedded MNIST sample: 10,000 training and 2,000 test images of the real set, 10% of
each digit, so examples and tests run without a download.  ``scripts/make_sample.py`` cuts it
and documents which images it holds.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy

from fastnet.errors import DataError

SAMPLE_PATH = Path(__file__).resolve().parent / "sample" / "mnist_sample.npz"
SOURCE = "embedded sample"
KEYS = ("x_train", "t_train", "x_test", "t_test", "train_index", "test_index")


def load_sample_arrays(path=SAMPLE_PATH) -> dict:
    """The sample's uint8 images (N, 28, 28), uint8 labels and their indices in full MNIST."""
    fix = "reinstall fastnet (or run scripts/make_sample.py)"
    try:
        with numpy.load(path, allow_pickle=False) as archive:
            missing = [k for k in KEYS if k not in archive.files]
            if missing:
                raise DataError(f"{path} lacks {', '.join(missing)}; {fix}")
            arrays = {k: archive[k] for k in KEYS}
    except FileNotFoundError:
        raise DataError(f"{path}: the embedded MNIST sample is missing; {fix}") from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise DataError(f"{path}: the embedded MNIST sample is corrupt ({type(exc).__name__}); {fix}") from None
    for split in ("train", "test"):
        x, t = arrays[f"x_{split}"], arrays[f"t_{split}"]
        if (
            x.dtype != numpy.uint8
            or t.dtype != numpy.uint8
            or x.ndim != 3
            or x.shape[1:] != (28, 28)
            or t.shape != (x.shape[0],)
            or (t.size and int(t.max()) > 9)
        ):
            raise DataError(f"{path}: the embedded MNIST sample has unexpected {split} arrays; {fix}")
    return arrays
