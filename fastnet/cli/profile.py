"""fastnet profile: where a training step's time goes, layer by layer (the book's layer names)."""

from fastnet.catalog import DTYPES, NET_NAMES, OPTIMIZER_NAMES, TRAIN_BATCH
from fastnet.cli.backend_choice import add_backend_options, choose_backend
from fastnet.cli.parser import positive_int, thread_count, timing_rounds


def register(sub):
    p = sub.add_parser(
        "profile",
        help="time each layer's forward and backward in a training step",
        description="Times one training step layer by layer on random inputs: forward "
        "and backward per layer (median over --steps after warm-up; the GPU "
        "is synchronised around each layer), its share of the step and the "
        "bytes it allocates.",
    )
    p.add_argument("--net", choices=NET_NAMES, default="two-layer", help="architecture (default: %(default)s)")
    add_backend_options(p)
    p.add_argument("--batch-size", type=positive_int, default=TRAIN_BATCH, help="default: %(default)s")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="default: %(default)s")
    p.add_argument(
        "--hidden", type=positive_int, nargs="+", default=None, help="hidden layer sizes (default: the net's recipe)"
    )
    p.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default=None, help="update rule (default: the net's recipe)")
    p.add_argument("--steps", type=timing_rounds, default=20, help="timed steps (default: %(default)s)")
    p.add_argument("--warmup", type=timing_rounds, default=3, help="untimed steps first (default: %(default)s)")
    add_threads_option(p)
    p.add_argument(
        "--out",
        metavar="FILE",
        default=None,
        help="also save the profile as JSON (the rows, the printed table, the thread choice and "
        "the machine: CPU, library versions, BLAS kernel)",
    )
    p.set_defaults(run=run)


def add_threads_option(parser):
    parser.add_argument(
        "--threads",
        type=thread_count,
        default=None,
        metavar="N",
        help="BLAS and numba threads (default: 1 for small nets, the usable cores for "
        "large ones; OMP_NUM_THREADS and friends also override)",
    )


def run(args):
    import numpy

    from fastnet.datasets.catalog import input_shape
    from fastnet.optim import make_optimizer
    from fastnet.profiling.step import format_profile, profile_step
    from fastnet.profiling.thread_choice import threads_for
    from fastnet.threads import using_threads
    from fastnet.training.config import RunConfig, build_net

    if args.out:
        _check_out(args.out)  # before the minutes of profiling, not after them
    backend = choose_backend(args).backend
    given = {"hidden": args.hidden} if args.hidden else {}
    if args.optimizer:
        given["optimizer"] = args.optimizer
    config = RunConfig.for_net(args.net, dtype=args.dtype, **given)
    sample_shape = input_shape(config.dataset, config.flatten)
    net = build_net(config, backend, sample_shape)
    rng = numpy.random.default_rng(0)
    x = backend.asarray(rng.random((args.batch_size, *sample_shape)).astype(args.dtype))
    t = backend.asarray(rng.integers(0, 10, args.batch_size))
    choice = threads_for(net, sample_shape, args.batch_size, args.threads)
    print(choice.describe())
    with using_threads(choice):
        result = profile_step(
            net, make_optimizer(config.optimizer, config.lr), x, t, steps=args.steps, warmup=args.warmup
        )
    text = format_profile(result)
    print(f"random inputs, {config.optimizer} update")
    print(text)
    if args.out:
        path = save_profile(args.out, result, text, choice.describe(), config.optimizer, _command(args))
        print(f"saved: {path}")
    return 0


def _command(args) -> str:
    """The command that makes this profile again (the options that shape it, defaults included)."""
    words = ["fastnet profile", f"--net {args.net}", f"--backend {args.backend}", f"--batch-size {args.batch_size}"]
    words += [f"--dtype {args.dtype}", f"--steps {args.steps}", f"--warmup {args.warmup}"]
    if args.hidden:
        words.append("--hidden " + " ".join(map(str, args.hidden)))
    if args.optimizer:
        words.append(f"--optimizer {args.optimizer}")
    if args.threads is not None:
        words.append(f"--threads {args.threads}")
    return " ".join(words)


def _check_out(out):
    """``--out`` names a file whose folder exists or can be made."""
    from pathlib import Path

    from fastnet.errors import InputError

    path = Path(out)
    if path.is_dir():
        raise InputError(f"--out {out} is a folder; give a file name, e.g. --out {path / 'profile.json'}")
    path.parent.mkdir(parents=True, exist_ok=True)


def save_profile(out, result, text, threads, optimizer, command):
    """The profile as JSON, written whole or not at all (``fastnet.atomic``)."""
    import json
    from pathlib import Path

    from fastnet.atomic import atomic_write
    from fastnet.benchmarking.machine import machine_info

    path = Path(out)
    record = {
        "command": command,
        "optimizer": optimizer,
        "threads": threads,
        "profile": result,
        "text": text,
        "machine": machine_info(),
    }
    payload = json.dumps(record, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(payload), binary=False)
    return path
