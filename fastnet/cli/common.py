"""What the subcommands share: finding a run's data, reading a checkpoint's run, naming options.

Where data may be downloaded to is decided here: only the cache or a ``--data-dir`` the user
typed.  A folder recorded in a checkpoint is read, never written, and a recorded folder that is
gone is an error naming it, never a silent switch to other data.
"""

from __future__ import annotations

from pathlib import Path

from fastnet import catalog
from fastnet.errors import CheckpointError, DataError, InputError


def option(key: str) -> str:
    """The command-line spelling of a setting: ``batch_size`` -> ``--batch-size``."""
    return "--" + key.replace("_", "-")


def show(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value)
    return str(value)


def typed_data_dir(data_dir):
    """The folder named by --data-dir, which must exist (downloads may go there)."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise InputError(
            f"--data-dir {data_dir}: no such folder; create it or name the folder that holds the IDX files"
        )
    return folder.resolve()


def source_of(data) -> str:
    """Where a loaded data set came from, as recorded in checkpoints: an absolute folder."""
    return data.source if data.is_sample else str(Path(data.source).resolve())


def load_run_data(name, data_dir=None, recorded=None, flatten=True, progress=True, checkpoint=None):
    """The data set ``name`` for a run.

    ``data_dir`` (typed by the user) wins.  Else ``recorded`` (a checkpoint's run record, for
    ``checkpoint``) names the folder the run was trained from: it is read with downloads off,
    and when it is gone the answer is an error naming it.  Else the usual search (and the
    embedded sample where full MNIST cannot be had).
    """
    from fastnet.datasets import load_dataset

    if data_dir is not None:
        return load_dataset(name, data_dir=typed_data_dir(data_dir), flatten=flatten, progress=progress)
    if name == catalog.SAMPLE or not recorded or "data_source" not in recorded:
        # Nothing recorded (a checkpoint saved through the API): the usual search.
        return load_dataset(name, flatten=flatten, progress=progress)
    folder = _recorded_folder(name, recorded, checkpoint)
    cache = _cache_folder(name)
    download = cache is not None and folder == cache  # the cache may be refilled; nothing else
    return load_dataset(name, data_dir=folder, download=download, flatten=flatten, progress=progress)


def _recorded_folder(name, recorded, checkpoint) -> Path:
    source = recorded.get("data_source")
    fix = f"pass --data-dir FOLDER with the four {name} IDX files (or --dataset to score another set)"
    if not isinstance(source, str) or not source:
        raise CheckpointError(f"{checkpoint} records no usable data folder ({source!r}); {fix}")
    folder = Path(source)
    if _cache_folder(name) == folder:
        return folder
    if _has_files(name, folder):
        # An absolute path as recorded; a relative one (fastnet 0.1) only as far as it holds the
        # data, which is then checked against the official checksums like any other copy.
        return folder.resolve()
    raise DataError(f"{checkpoint} was trained on {name} from {source}, which does not hold the data set here; {fix}")


def _has_files(name, folder: Path) -> bool:
    from fastnet.datasets import locate
    from fastnet.datasets.catalog import SPECS

    return folder.is_dir() and locate.has_all(SPECS[name], folder)


def _cache_folder(name):
    from fastnet.datasets import locate
    from fastnet.datasets.catalog import SPECS

    return locate.cache_dir(SPECS[name]).resolve() if name in SPECS else None


def check_same_data(recorded: dict, data_name: str, train_samples: int, source):
    """A resumed run must see the data it was trained on (same set, same size)."""
    name, count = recorded.get("data_name"), recorded.get("train_samples")
    if name is None or count is None:
        return
    if name != data_name or count != train_samples:
        raise CheckpointError(
            f"{source} was trained on {count:,} {name} images, but this run has "
            f"{train_samples:,} {data_name} images; pass the --data-dir it was "
            f"trained with"
        )


def read_run(path):
    """``(meta, config)`` of a training checkpoint, checked; its arrays are read once the net
    they must fit is built (``fastnet.training.checkpoint.load_checkpoint_arrays``)."""
    from fastnet.training.checkpoint import checkpoint_config, read_checkpoint_meta

    meta = read_checkpoint_meta(path)
    return meta, checkpoint_config(meta, path)
