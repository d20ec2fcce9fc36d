"""Where a dataset's files are looked for, and reading them with every check.

Search order (the first place that has all four files wins):

1. ``data_dir`` when the caller gives one - the only place looked at; missing files are
   downloaded into it when ``download`` is true, and any failure is an error.
2. ``$FASTNET_DATA/<dataset>/`` (e.g. ``$FASTNET_DATA/mnist/``), then ``$FASTNET_DATA`` itself;
   these are read, never written.
3. The cache ``$XDG_CACHE_HOME/fastnet/<dataset>`` (default ``~/.cache/fastnet/<dataset>``, on Windows
   ``%LOCALAPPDATA%\\fastnet\\<dataset>``):
   missing files are downloaded into it, and a cached file that fails its checks is downloaded
   again once.

Each file may be gzipped (``name.gz``) or plain (``name``).  With ``verify`` the decompressed
content must match the official MD5, so re-compressed copies are accepted and another
dataset's files are not.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from fastnet.datasets import idx
from fastnet.datasets.download import DEFAULT_DEADLINE, DEFAULT_TIMEOUT, download_file
from fastnet.errors import DataError
from fastnet.host_memory import available_host_bytes
from fastnet.portable import user_cache_root


class Unavailable(DataError):
    """The dataset is not on this machine and could not be downloaded (offline, mirrors down)."""


def cache_dir(spec) -> Path:
    return user_cache_root() / "fastnet" / spec.name


def env_dirs(spec):
    root = os.environ.get("FASTNET_DATA")
    return [Path(root) / spec.name, Path(root)] if root else []


def find_file(directory, idx_file):
    for name in (idx_file.gz_name, idx_file.name):
        path = Path(directory) / name
        if path.is_file():
            return path
    return None


def has_all(spec, directory):
    return all(find_file(directory, f) for f in spec.files)


def load_arrays(
    spec,
    data_dir=None,
    download=True,
    progress=True,
    verify=True,
    mirrors=None,
    timeout=DEFAULT_TIMEOUT,
    deadline=DEFAULT_DEADLINE,
):
    """``(x_train, t_train, x_test, t_test, source)``: uint8 arrays and the folder they came from.

    Raises DataError when the dataset is nowhere to be had; the message says what was tried.
    """
    fetch = dict(mirrors=spec.mirror_list(mirrors), timeout=timeout, deadline=deadline, progress=progress)
    if data_dir is not None:
        directory = Path(data_dir).expanduser()
        if download:
            _download_missing(spec, directory, **fetch)
        elif not has_all(spec, directory):
            raise DataError(
                f"{spec.title} files missing in {directory}: {_missing(spec, directory)}; "
                f"copy them there or pass download=True"
            )
        return _read_all(spec, directory, verify) + (str(directory),)
    for directory in env_dirs(spec):
        if has_all(spec, directory):
            return _read_all(spec, directory, verify) + (str(directory),)
    directory = cache_dir(spec)
    if not download and not has_all(spec, directory):
        searched = ", ".join(str(d) for d in env_dirs(spec) + [directory])
        raise Unavailable(f"{spec.title} not found (looked in {searched}) and downloading is off")
    repair = None
    if download:
        _or_unavailable(_download_missing, spec, directory, **fetch)

        def repair(f):
            _or_unavailable(download_file, f.gz_name, directory, md5=f.gz_md5, **fetch)

    return _read_all(spec, directory, verify, repair) + (str(directory),)


def _or_unavailable(download, *args, **kwargs):
    """A failed download into the cache means the data cannot be had here: callers may fall back."""
    try:
        download(*args, **kwargs)
    except DataError as exc:
        raise Unavailable(str(exc)) from None


def _missing(spec, directory):
    return ", ".join(f.gz_name for f in spec.files if not find_file(directory, f))


def _download_missing(spec, directory, mirrors, timeout, deadline, progress):
    for f in spec.files:
        if find_file(directory, f) is None:
            download_file(
                f.gz_name, directory, mirrors, f.gz_md5, timeout=timeout, progress=progress, deadline=deadline
            )


def _read_all(spec, directory, verify, repair=None):
    """Labels first (small): images whose count disagrees are refused before they are read."""
    n_classes = len(spec.classes)
    split = {}
    for name, images_file, labels_file in (
        ("train", spec.train_images, spec.train_labels),
        ("test", spec.test_images, spec.test_labels),
    ):
        labels = _read(spec, directory, labels_file, idx.LABELS_MAGIC, verify, repair)
        labels_path, images_path = (_where(directory, f) for f in (labels_file, images_file))
        idx.check_labels(labels, labels_path, n_classes)
        count = _count_check(spec, images_file, labels, images_path, labels_path, verify)
        split[name] = (
            _read(
                spec,
                directory,
                images_file,
                idx.IMAGES_MAGIC,
                verify,
                repair,
                _both(count, _fits_in_memory(images_path)),
            ),
            labels,
        )
    return (*split["train"], *split["test"])


def _count_check(spec, images_file, labels, images_path, labels_path, verify):
    """Images must match the labels in number; verified labels are official, so then it is the images."""
    same = idx.same_count(labels, images_path, labels_path)
    if not verify:
        return same

    def check(shape):
        if shape[0] != len(labels):
            raise DataError(
                f"{images_path} is not the official {spec.title} {images_file.name} (it holds "
                f"{shape[0]:,} images, the official file {len(labels):,}); delete it and "
                f"download again, or pass verify=False for your own data"
            )
        same(shape)

    return check


def _both(*checks):
    def check(shape):
        for one in checks:
            one(shape)

    return check


# The uint8 pixels as read, and their float32 copy for training.
BYTES_PER_PIXEL = 1 + 4


def _fits_in_memory(images_path):
    """Refuse, before reading, images that the host could not hold: a small gzip file whose
    header and labels agree on a huge count would otherwise fill memory and end in MemoryError."""

    def check(shape):
        need = math.prod(shape) * BYTES_PER_PIXEL
        free = available_host_bytes()
        if free is not None and need > free:
            raise DataError(
                f"{images_path} holds {shape[0]:,} images, which need about {need / 2**30:.2f} GiB "
                f"(as read and as float32) but only {free / 2**30:.2f} GiB of memory is available; "
                f"use a smaller data set or a machine with more memory"
            )

    return check


def _where(directory, idx_file):
    return find_file(directory, idx_file) or Path(directory) / idx_file.gz_name


def _read(spec, directory, idx_file, magic, verify, repair, check_shape=None):
    try:
        return _read_checked(spec, directory, idx_file, magic, verify, check_shape)
    except DataError:
        if repair is None:
            raise
    repair(idx_file)  # a cached file we wrote went bad: replace it atomically, then read again
    return _read_checked(spec, directory, idx_file, magic, verify, check_shape)


def _read_checked(spec, directory, idx_file, magic, verify, check_shape):
    path = find_file(directory, idx_file)
    if path is None:
        raise DataError(f"{Path(directory) / idx_file.gz_name}: no such file; copy it there or allow downloading")
    # A grayscale IDX file holds (H, W) per image; more channels, (C, H, W).
    channels, *hw = spec.image_shape
    item_shape = (tuple(hw) if channels == 1 else tuple(spec.image_shape)) if magic == idx.IMAGES_MAGIC else None
    array = idx.read_idx(path, magic, item_shape, check_shape=check_shape)
    if verify and idx.content_md5(array, magic) != idx_file.content_md5:
        raise DataError(
            f"{path} is not the official {spec.title} {idx_file.name} (content MD5 differs); "
            f"delete it and download again, or pass verify=False for your own data"
        )
    return array
