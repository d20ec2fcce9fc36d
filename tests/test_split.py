"""The validation split: exact size, stratified, disjoint, reproducible from its seed."""

import numpy
import pytest

from fastnet.datasets import load_dataset
from fastnet.datasets.split import validation_split
from fastnet.errors import InputError


def unbalanced_labels(n=1000, seed=1):
    rng = numpy.random.default_rng(seed)
    return rng.choice(10, size=n, p=numpy.linspace(1, 3, 10) / numpy.linspace(1, 3, 10).sum())


def test_full_mnist_split_is_exact_stratified_disjoint_and_covering(mnist_dir):
    labels = load_dataset("mnist", data_dir=mnist_dir, progress=False).t_train
    train, val = validation_split(labels, 5000, seed=0)
    assert len(val) == 5000 and len(train) == 55000
    assert numpy.intersect1d(train, val).size == 0
    numpy.testing.assert_array_equal(numpy.union1d(train, val), numpy.arange(60000))
    share = numpy.bincount(labels[val], minlength=10) / numpy.bincount(labels, minlength=10)
    assert numpy.all(numpy.abs(share - 5000 / 60000) < 1 / 5000), share


@pytest.mark.parametrize("size, expected", [(137, 137), (0.1, 100), (0.0837, 84), (1, 1), (999, 999)])
def test_sizes_are_exact_and_classes_get_their_share(size, expected):
    labels = unbalanced_labels()
    train, val = validation_split(labels, size, seed=3)
    assert len(val) == expected and len(train) == 1000 - expected
    assert numpy.all(numpy.diff(val) > 0) and numpy.all(numpy.diff(train) > 0)
    assert numpy.intersect1d(train, val).size == 0
    counts = numpy.bincount(labels, minlength=10)
    got = numpy.bincount(labels[val], minlength=10)
    # Stratified: each class within one image of its exact proportional share.
    assert numpy.all(numpy.abs(got - counts * expected / 1000) < 1), (got, counts * expected / 1000)


def test_same_seed_same_split_other_seed_other_split():
    labels = unbalanced_labels()
    first = validation_split(labels, 200, seed=7)
    again = validation_split(labels.copy(), 200, seed=7)
    other = validation_split(labels, 200, seed=8)
    for a, b in zip(first, again, strict=True):
        numpy.testing.assert_array_equal(a, b)
    assert not numpy.array_equal(first[1], other[1])
    # Per-class counts do not depend on the seed, only which images are drawn.
    numpy.testing.assert_array_equal(numpy.bincount(labels[first[1]]), numpy.bincount(labels[other[1]]))


def test_one_hot_labels_give_the_same_split():
    labels = unbalanced_labels()
    one_hot = numpy.eye(10, dtype=numpy.float32)[labels]
    for a, b in zip(validation_split(labels, 0.2, seed=1), validation_split(one_hot, 0.2, seed=1), strict=True):
        numpy.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "size, named",
    [
        (0, "validation size"),
        (-5, "validation size"),
        (1000, "leaves no"),
        (1.0, "neither"),
        (2.5, "neither"),
        ("0.1", "validation size"),
        (float("nan"), "validation size"),
        (True, "validation size"),
    ],
)
def test_bad_sizes_are_refused(size, named):
    with pytest.raises(InputError, match=named):
        validation_split(unbalanced_labels(), size)


def test_bad_labels_and_seed_are_refused():
    with pytest.raises(InputError, match="integer class labels"):
        validation_split(numpy.zeros(10, numpy.float32), 2)
    with pytest.raises(InputError, match="seed"):
        validation_split(unbalanced_labels(), 2, seed=-1)
