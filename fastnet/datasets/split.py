"""A validation split held out of a training set: seeded, stratified, exact in size.

Model selection (best epoch, early stopping) must not look at the test set; it looks at a
part of the training set the net never trains on.  Each class gives its share of the
validation images (largest remainders settle the rounding, so the total is exact), the images
within a class are drawn with ``numpy.random.default_rng(seed)``, and the same labels and seed
always give the same split.
"""

from __future__ import annotations

import numbers

import numpy

from fastnet.errors import InputError


def validation_split(labels, size, seed=0):
    """Indices ``(train, val)`` into the training set, each sorted ascending, disjoint, covering it.

    ``labels``: class indices (N,) or one-hot rows (N, classes), on the host.  ``size``: the
    number of validation images (an integer, e.g. 5000) or a fraction of N in (0, 1).
    """
    classes = _class_indices(labels)
    n = classes.shape[0]
    count = _validation_count(size, n)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise InputError(f"the validation split's seed must be an integer >= 0; got {seed!r}")
    present, per_class = numpy.unique(classes, return_counts=True)
    quotas = _apportion(per_class, count)
    rng = numpy.random.default_rng(int(seed))
    chosen = [rng.permutation(numpy.flatnonzero(classes == c))[:q] for c, q in zip(present, quotas, strict=True)]
    val = numpy.sort(numpy.concatenate(chosen))
    keep = numpy.ones(n, dtype=bool)
    keep[val] = False
    return numpy.flatnonzero(keep), val


def _class_indices(labels):
    labels = numpy.asarray(labels)
    if labels.ndim == 2:
        labels = labels.argmax(axis=1)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise InputError(
            f"validation_split needs integer class labels (N,) or one-hot rows; "
            f"got an array of shape {labels.shape} and dtype {labels.dtype}"
        )
    return labels


def _validation_count(size: float, n: int) -> int:
    if isinstance(size, bool) or not isinstance(size, numbers.Real) or not size > 0:
        raise InputError(f"the validation size must be a count >= 1 or a fraction in (0, 1); got {size!r}")
    count = int(size) if isinstance(size, numbers.Integral) else (round(size * n) if size < 1 else None)
    if count is None:
        raise InputError(f"the validation size {size!r} is neither a whole count nor a fraction in (0, 1)")
    if count < 1:  # a fraction too small to hold one image: "0 images" would read as a bug
        raise InputError(
            f"a validation split of {size!r} of {n} images is less than one image; "
            f"choose a fraction of at least {1 / n:.2g}, or a count between 1 and {n - 1}"
        )
    if count >= n:
        raise InputError(
            f"a validation split of {count} images leaves no training data from {n}; "
            f"choose between 1 and {n - 1} (or a fraction in (0, 1))"
        )
    return count


def _apportion(per_class, count):
    """Split ``count`` in proportion to ``per_class``: floors, then +1 for the largest remainders."""
    exact = per_class * count / per_class.sum()
    quotas = numpy.floor(exact).astype(numpy.int64)
    short = count - int(quotas.sum())
    # Stable order on equal remainders: the lower class first, so the split never depends on luck.
    order = numpy.argsort(-(exact - quotas), kind="stable")
    quotas[order[:short]] += 1
    return quotas
