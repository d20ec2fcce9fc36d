"""A run's configuration: everything needed to rebuild its net, optimizer and batches
(``RunConfig``, recorded in every checkpoint), and how the training loop runs
(``TrainerConfig``).  Names and defaults come from ``fastnet.catalog``."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from fastnet import catalog
from fastnet.annotations import BackendLike, PathLike
from fastnet.errors import InputError
from fastnet.training.run_options import RunOptions, check_run_options

# What a resumed run may change: anything else alters the net, the data or the batches.
ADJUSTABLE_ON_RESUME = ("epochs", "lr", "keep_best", "early_stop", "train_eval")
_DEFAULT = catalog.NETS[catalog.DEFAULT_NET].recipe
# What a checkpoint's config records beside the RunConfig: where the run ran and on what data.
RECORD_KEYS = ("backend", "data_source", "data_name", "train_samples", "ranks", "distributed", "lr_scale")


@dataclass
class RunConfig(RunOptions):
    """What a run learns; ``RunConfig()`` is the classic recipe of the default net.

    Model selection and the schedule (``val_split``, ``lr_schedule``, ...) come from
    ``RunOptions``: a resumed run needs them.

    Examples
    --------
    >>> config = RunConfig.for_net("simple-conv", epochs=1)
    >>> config.net, config.epochs, config.flatten
    ('simple-conv', 1, False)
    >>> RunConfig.from_dict(config.to_dict()) == config
    True
    """

    net: str = catalog.DEFAULT_NET
    dataset: str = catalog.DEFAULT_DATASET
    epochs: int = _DEFAULT.epochs
    batch_size: int = catalog.TRAIN_BATCH
    lr: float = _DEFAULT.lr
    optimizer: str = _DEFAULT.optimizer
    hidden: list[int] = field(default_factory=lambda: list(_DEFAULT.hidden))
    weight_decay: float = 0.0  # the optimizer's, for every net (AdamW for adam): fastnet.optim
    dropout: float = 0.0
    batchnorm: bool = False
    dtype: str = catalog.DEFAULT_DTYPE
    seed: int = catalog.DEFAULT_SEED
    limit: int | None = None  # train on the first ``limit`` training samples only

    @classmethod
    def for_net(cls, net: str = catalog.DEFAULT_NET, **given: Any) -> RunConfig:
        """``net``'s classic recipe, overridden by ``given`` settings; checked.

        Raises
        ------
        InputError
            For an unknown net or setting, or a setting out of range.
        """
        recipe = catalog.net_entry(net).recipe
        return cls.from_dict(
            {
                **cls().to_dict(),
                "optimizer": recipe.optimizer,
                "lr": recipe.lr,
                "epochs": recipe.epochs,
                "hidden": list(recipe.hidden),
                **given,
                "net": net,
            }
        ).check()

    def to_dict(self) -> dict[str, Any]:
        """Every setting by name (JSON-able): what a checkpoint records."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """The RunConfig of ``data``; a key that is not a setting is refused, not dropped."""
        if not isinstance(data, dict):
            raise InputError(f"a run configuration must be a dict, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(
                f"unknown run setting(s) {', '.join(map(str, unknown))}; known: {', '.join(sorted(known))}"
            )
        return cls(**data)

    @classmethod
    def from_record(cls, recorded: dict[str, Any]) -> RunConfig:
        """The RunConfig of a checkpoint's ``config`` (which also records ``RECORD_KEYS``)."""
        if not isinstance(recorded, dict):
            raise InputError(f"a run configuration must be a dict, not {type(recorded).__name__}")
        return cls.from_dict({k: v for k, v in recorded.items() if k not in RECORD_KEYS})

    def check(self) -> RunConfig:
        """The config itself, once every setting is known to be in range.

        Raises
        ------
        InputError
            Naming the first setting out of range (as its command-line option).
        """
        _choice("net", self.net, catalog.NET_NAMES)
        _choice("dataset", self.dataset, catalog.DATASETS)
        _choice("optimizer", self.optimizer, catalog.OPTIMIZER_NAMES)
        _choice("dtype", self.dtype, catalog.DTYPES)
        for name in ("epochs", "batch_size", "seed", "limit"):
            value = getattr(self, name)
            if name == "limit" and value is None:
                continue
            check_count(f"--{name.replace('_', '-')}", value, least=0 if name == "seed" else 1)
        if not _is_number(self.lr) or not self.lr > 0:
            raise InputError(f"--lr must be a positive number; got {self.lr!r}")
        if (
            not isinstance(self.hidden, (list, tuple))
            or not self.hidden
            or not all(_is_int(h) and h >= 1 for h in self.hidden)
        ):
            raise InputError(f"--hidden needs positive layer sizes; got {self.hidden!r}")
        if not _is_number(self.dropout) or not 0 <= self.dropout < 1:
            raise InputError(f"--dropout must be in [0, 1); got {self.dropout!r}")
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            raise InputError(f"--weight-decay must be >= 0; got {self.weight_decay!r}")
        if not isinstance(self.batchnorm, bool):
            raise InputError(f"batchnorm must be true or false; got {self.batchnorm!r}")
        self.hidden = list(self.hidden)
        check_run_options(self)
        return self

    @property
    def flatten(self) -> bool:
        """True when the net takes flat rows (MLPs), False when it takes images (conv nets)."""
        return not catalog.net_entry(self.net).images


@dataclass
class TrainerConfig(RunOptions):
    """How the training loop runs and reports, with the model selection and schedule it runs.

    ``record`` is the description of the run saved with every checkpoint and history (a
    ``RunConfig``'s dict and where the data came from); ``free_memory`` overrides the measured
    free bytes of the memory check.

    Examples
    --------
    >>> TrainerConfig(epochs=2, progress=False).with_options(batch_size=50).batch_size
    50
    """

    epochs: int = 10
    batch_size: int = catalog.TRAIN_BATCH
    seed: int = catalog.DEFAULT_SEED
    eval_batch_size: int = catalog.EVAL_BATCH
    out_dir: PathLike | None = None
    progress: bool = True
    log: Callable[..., object] | None = print
    log_every: int = catalog.LOG_EVERY
    record: dict[str, Any] = field(default_factory=dict)
    check_memory: bool = True
    free_memory: int | None = None
    title: str = ""
    tensorboard: PathLike | None = None  # a folder for TensorBoard events
    threads: int | None = None  # --threads: BLAS and convolution threads (None: fastnet.threads' policy)

    @classmethod
    def for_run(cls, run: RunConfig, record: dict[str, Any] | None = None, **options: Any) -> TrainerConfig:
        """The loop settings of ``run`` (epochs, batch size, seed); ``run`` and the ``record``
        entries (the backend, where the data came from) are saved with its checkpoints."""
        return cls(
            epochs=run.epochs,
            batch_size=run.batch_size,
            seed=run.seed,
            record={**run.to_dict(), **(record or {})},
            **{**run.run_options(), **options},
        ).check()

    def with_options(self, **options: Any) -> TrainerConfig:
        """A checked copy with ``options`` (field names) changed.

        Raises
        ------
        InputError
            For an option that is not a field, or a setting out of range.
        """
        known = {f.name for f in fields(self)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InputError(f"Trainer got unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return replace(self, **options).check()

    def check(self) -> TrainerConfig:
        """The config itself, once the counts and run options are known to be in range.

        Raises
        ------
        InputError
            Naming the first setting out of range.
        """
        check_count("epochs", self.epochs)
        check_count("batch_size", self.batch_size)
        check_count("eval_batch_size", self.eval_batch_size)
        check_count("log_every", self.log_every)
        check_count("seed", self.seed, least=0)
        if self.threads is not None:
            check_count("threads", self.threads)
        check_run_options(self)
        return self


def check_count(name: str, value: Any, least: int = 1) -> None:
    """``value`` must be a whole number >= ``least`` (1.7 epochs is a mistake, not 1)."""
    if not _is_int(value) or value < least:
        kind = "an integer >= 0" if least == 0 else "a positive integer"
        raise InputError(f"{name} must be {kind}; got {value!r}")


def _choice(name, value, choices):
    if value not in choices:
        raise InputError(f"unknown {name} {value!r}; choose one of: {', '.join(choices)}")


def _is_int(value) -> bool:
    import numpy

    return isinstance(value, (int, numpy.integer)) and not isinstance(value, (bool, numpy.bool_))


def _is_number(value) -> bool:
    return _is_int(value) or (isinstance(value, float) and math.isfinite(value))


def build_net(
    config: RunConfig, backend: BackendLike, input_shape: Sequence[int], output_size: int = catalog.CLASSES
) -> Any:
    """The net a config describes, initialised from its seed.

    Parameters
    ----------
    config : RunConfig
        Names the net and its settings (hidden sizes, dropout, batch norm, dtype, seed).
    backend : Backend, str or None
        Where the net computes.
    input_shape : sequence of int
        One sample's shape: ``(784,)`` for an MLP, ``(1, 28, 28)`` for a conv net.
    output_size : int
        The number of classes.

    Returns
    -------
    Sequential

    Examples
    --------
    >>> net = build_net(RunConfig.for_net("simple-conv"), "numpy", (1, 28, 28))
    >>> type(net).__name__, net.output_size
    ('SimpleConvNet', 10)
    """
    return catalog.net_entry(config.net).build(config, backend, tuple(input_shape), output_size)
