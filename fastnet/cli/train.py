"""fastnet train: learn MNIST (or Fashion-MNIST) with one of the classic nets."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fastnet import catalog
from fastnet.blas import describe_blas
from fastnet.cli.backend_choice import add_backend_options, choose_backend
from fastnet.cli.common import check_same_data, load_run_data, option, read_run, show, source_of
from fastnet.cli.distributed import add_distributed_options, launch
from fastnet.cli.parser import fraction, non_negative_int, positive_float, positive_int
from fastnet.cli.profile import add_threads_option
from fastnet.cli.train_header import data_line, evaluation_line, net_line
from fastnet.cli.train_options import add_selection_options, given_selection_options
from fastnet.cli.train_pictures import first_filters, refuse_stopped_run, write_train_pictures
from fastnet.errors import InputError
from fastnet.training.config import ADJUSTABLE_ON_RESUME, RunConfig
from fastnet.training.extension import called_at
from fastnet.training.parallel import print_rank_line
from fastnet.training.profile_once import ProfileOnce
from fastnet.training.run_files import remove_previous_run
from fastnet.training.selection import summary_lines
from fastnet.words import counted


def register(sub):
    p = sub.add_parser(
        "train",
        help="train a net and save history, curves and a checkpoint",
        description="Train a classic net. Defaults reproduce the classic TwoLayerNet run "
        f"(784-50-10, batch {catalog.TRAIN_BATCH}, SGD lr 0.1, 17 epochs).",
    )
    p.add_argument(
        "--net", choices=catalog.NET_NAMES, default=None, help=f"architecture (default: {catalog.DEFAULT_NET})"
    )
    add_backend_options(p, default=None)
    p.add_argument(
        "--dataset",
        choices=catalog.DATASETS,
        default=None,
        help=f"data set (default: {catalog.DEFAULT_DATASET}; the embedded sample where it cannot be had)",
    )
    p.add_argument(
        "--data-dir", default=None, help="folder holding the four IDX files (missing ones are downloaded there)"
    )
    p.add_argument(
        "--epochs", type=positive_int, default=None, help="passes over the training set (default: the net's recipe)"
    )
    p.add_argument("--batch-size", type=positive_int, default=None, help=f"default: {catalog.TRAIN_BATCH}")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: the net's recipe)")
    p.add_argument(
        "--optimizer", choices=catalog.OPTIMIZER_NAMES, default=None, help="update rule (default: the net's recipe)"
    )
    p.add_argument("--hidden", type=positive_int, nargs="+", default=None, help="hidden layer sizes")
    p.add_argument("--dropout", type=fraction, default=None, help="dropout ratio (mlp; 0 = off)")
    p.add_argument("--batchnorm", action="store_true", default=None, help="batch normalisation (mlp)")
    p.add_argument(
        "--dtype",
        choices=catalog.DTYPES,
        default=None,
        help=f"floating-point type of weights and arithmetic (default: {catalog.DEFAULT_DTYPE})",
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=None,
        help=f"seeds the weights, the batches and the validation split (default: {catalog.DEFAULT_SEED})",
    )
    p.add_argument("--out", default=None, help="output folder (default: runs/<net>-<dataset>-<time>)")
    p.add_argument(
        "--resume",
        default=None,
        metavar="CHECKPOINT",
        help="continue a run from its checkpoint, with the settings, backend and data it "
        "recorded; --epochs (to extend), --lr and --backend may change",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out instead of refusing: its checkpoints, history and "
        "pictures are removed first (other files stay)",
    )
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N training samples")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one log line per epoch")
    add_selection_options(p)
    add_threads_option(p)
    p.add_argument("--profile", action="store_true", help="print a per-layer profile after the first epoch")
    add_distributed_options(p)
    p.set_defaults(run=run)


def given_options(args) -> dict:
    """The run settings the user typed (None: not given)."""
    given = {
        "net": args.net,
        "dataset": args.dataset,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "hidden": args.hidden,
        "dropout": args.dropout,
        "batchnorm": args.batchnorm,
        "dtype": args.dtype,
        "seed": args.seed,
        "limit": args.limit,
    }
    return {**{k: v for k, v in given.items() if v is not None}, **given_selection_options(args)}


def config_from_args(args, base: RunConfig | None = None, finished_epochs=0, source=None) -> RunConfig:
    """A new run: the recipe, overridden by the options given.  A resumed run (``base``): the
    checkpoint's settings; options may extend --epochs or change --lr, and any other option
    that differs from the checkpoint is refused rather than silently ignored or applied."""
    given = given_options(args)
    if base is None:
        given.pop("net", None)
        given.setdefault("train_eval", catalog.TRAIN_EVAL_SAMPLE)  # what PyTorch users expect to pay
        return RunConfig.for_net(args.net or catalog.DEFAULT_NET, **given)
    values = base.to_dict()
    conflicts = [
        f"{option(k)} {show(v)} (checkpoint: {show(values[k])})"
        for k, v in given.items()
        if k not in ADJUSTABLE_ON_RESUME and v != values[k]
    ]
    if conflicts:
        raise InputError(
            f"{source} was trained with other settings: {'; '.join(conflicts)}; a resumed "
            f"run keeps its net, data and batches, so drop those options or start a new "
            f"run without --resume"
        )
    values.update({k: v for k, v in given.items() if k in ADJUSTABLE_ON_RESUME})
    config = RunConfig.from_dict(values).check()
    if finished_epochs >= config.epochs:
        raise InputError(
            f"{source} has finished {counted(finished_epochs, 'epoch')}, as many as --epochs "
            f"{config.epochs} asks for; give a larger --epochs to train further"
        )
    return config


def output_folder(args, config) -> Path:
    """Check the output folder up front, so a bad --out fails before any training.

    The folder itself is created by the first save, so a run refused early leaves nothing behind.
    """
    if args.out:
        out_dir = Path(args.out)
    elif args.resume:
        out_dir = Path(args.resume).parent
    else:
        out_dir = Path("runs") / f"{config.net}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    existing = out_dir
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise InputError(f"--out {out_dir}: {existing} is a file, not a folder; choose another --out")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"--out {out_dir}: cannot write in {existing}; choose another --out")
    checkpoint = out_dir / "checkpoint.npz"
    if checkpoint.exists() and not continues_run(args, out_dir) and not args.overwrite:
        raise InputError(
            f"{out_dir} already holds a run ({checkpoint}); continue it with --resume "
            f"{checkpoint}, choose another --out, or pass --overwrite to replace it"
        )
    return out_dir


def shared_settings(args, config, meta) -> dict:
    """What every rank of a job must be started with alike: whatever changes the numbers.

    (``--net`` and ``--hidden`` also change the parameters' shapes, which the broadcast checks.)
    """
    settings = {option(key): value for key, value in config.to_dict().items()}
    settings["--lr-scale"] = args.lr_scale
    progress = meta["progress"] if meta else None
    settings["--resume"] = f"a checkpoint at epoch {progress['epoch']}, step {progress['step']}" if progress else None
    return settings


def continues_run(args, out_dir) -> bool:
    """Whether this is ``--resume`` of the run in ``out_dir`` itself (its checkpoint.npz)."""
    checkpoint = Path(out_dir) / "checkpoint.npz"
    return bool(args.resume) and checkpoint.exists() and checkpoint.resolve() == Path(args.resume).resolve()


def run(args):
    """One process, or (``--distributed``) every rank of an mpiexec job; see cli/distributed.py."""
    return launch(args, train)


def train(args, job):
    from fastnet.training import Trainer, TrainerConfig, build_net

    say = print
    meta = base = None
    recorded = {}
    if args.resume:
        meta, base = read_run(args.resume)
        recorded = meta["config"]
        config = config_from_args(args, base, meta["progress"]["epoch"], args.resume)
    else:
        config = config_from_args(args)
    # A folder the user named is checked before any data is read; the default one is named
    # after the data actually used (the embedded sample, where full MNIST cannot be had).
    out_dir = output_folder(args, config) if args.out or args.resume else None
    # The ranks' first meeting: each loads its backend, and all compare the settings.
    recorded_backend = meta["backend"] if meta else None
    backend = job.on_every_rank(
        lambda: choose_backend(args, recorded=recorded_backend), same=shared_settings(args, config, meta)
    ).backend
    job.limit_threads(args.threads)  # a rank's share of the node, for the rest of the process

    data = job.on_every_rank(  # a rank that cannot read (or fetch) the data stops every rank alike
        lambda: load_run_data(
            config.dataset, args.data_dir, recorded, config.flatten, progress=not args.quiet, checkpoint=args.resume
        )
    )
    if data.is_sample and config.dataset != catalog.SAMPLE:
        config.dataset = catalog.SAMPLE  # it fell back: a resumed run must train on the sample too
    out_dir = out_dir or output_folder(args, config)
    same_data = {"data": f"{data.name}, {len(data.x_train)} training samples of shape {data.x_train.shape[1:]}"}
    with job.holding_output_folder(out_dir, say=say, same=same_data):
        if args.overwrite and job.root_only(out_dir) is not None and not continues_run(args, out_dir):
            # Under the lock: nothing of the replaced run may pass for this one's (see run_files).
            remove_previous_run(out_dir, keep=[args.resume] if args.resume else [], say=say)
        x_train, t_train = data.x_train, data.t_train
        if config.limit:
            x_train, t_train = x_train[: config.limit], t_train[: config.limit]
        if args.resume:
            check_same_data(recorded, data.name, len(x_train), args.resume)

        net = build_net(config, backend, x_train.shape[1:])
        optimizer = catalog.make_optimizer(config.optimizer, job.lr(config.lr), config.weight_decay)
        filters_before = first_filters(net)  # the seed's, also on a resume (for filters.png)
        record = {
            "backend": backend.name,
            "data_source": source_of(data),
            "data_name": data.name,
            "train_samples": int(len(x_train)),
            **job.record(),
        }
        settings = TrainerConfig.for_run(
            config,
            record,
            out_dir=out_dir,
            progress=not args.quiet,
            log=say,
            tensorboard=args.tensorboard,
            threads=args.threads,
            title=f"{config.net} on {data.name} ({backend.name})",
        )
        trainer = Trainer(
            net, optimizer, x_train, t_train, data.x_test, data.t_test, settings=job.settings(settings), step=job.step()
        )
        say(data_line(data, trainer, config.limit))  # the sizes after --limit and --val-split
        if args.resume:
            job.on_every_rank(lambda: resume_from(args.resume, meta, trainer))  # a damaged file: one line
            if config.lr != base.lr:
                say(f"learning rate changed from {base.lr} to {config.lr} for the rest of the run")
            say(f"resuming {args.resume} at {trainer.position()}")
            refuse_stopped_run(trainer, args.resume)
        job.start(trainer, meta, say)
        print_rank_line(job, config.lr, say)
        say(net_line(config, trainer))
        say(evaluation_line(trainer))

        say(trainer.thread_choice.describe())
        if args.profile:
            trainer.extend(ProfileOnce(say))
        # A run's last digits depend on the BLAS kernel the CPU picked: name it beside them, as
        # the run starts (under the threads it trains with).
        trainer.extend(called_at("start", lambda _trainer: say(f"BLAS: {describe_blas()}")))
        history = trainer.fit()
    pictures = [trainer.curves_path, *write_train_pictures(trainer, filters_before)]
    print_summary(say, backend, history, out_dir, pictures, config.keep_best)
    return 0


def resume_from(path, meta, trainer):
    """The checkpoint's parameters, optimizer slots, layer state and progress, into ``trainer``."""
    from fastnet.training.checkpoint import load_checkpoint_arrays, restore_checkpoint

    arrays = load_checkpoint_arrays(path, trainer.net, trainer.optimizer)
    restore_checkpoint(trainer.net, trainer.optimizer, arrays, meta, path)
    trainer.restore_progress(meta["progress"], meta["history"], source=path)


def print_summary(say, backend, history, out_dir, pictures, keep_best=False):
    data = history.to_dict()
    seconds = data["epoch_seconds"]
    rates = data["samples_per_second"]
    say(f"backend used: {backend.name}")
    if data["epoch"]:
        for line in summary_lines(data, out_dir, keep_best):
            say(line)
        say(f"time: {sum(seconds) / len(seconds):.2f} s per epoch, {sum(rates) / len(rates):,.0f} samples/s")
    say(
        f"outputs: {out_dir / 'history.json'}, {', '.join(map(str, pictures))}, {out_dir / 'checkpoint.npz'}"
        + (f", {out_dir / 'best.npz'}" if keep_best else "")
    )
