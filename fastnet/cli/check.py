"""fastnet check: do the backends compute what the numpy reference computes, layer by layer?"""

import numpy

from fastnet.backends import BACKEND_NAMES
from fastnet.catalog import DEFAULT_DATASET, DTYPES, NET_NAMES, net_entry
from fastnet.cli.parser import non_negative_int, positive_int

ALL_BACKENDS = BACKEND_NAMES[::-1]  # numpy (the reference) first


def register(sub):
    p = sub.add_parser(
        "check",
        help="compare each backend with numpy on one forward/backward, per layer",
        description="Build the same net from the same weights on each backend, run one "
        "forward/backward on the same batch and compare every layer's output "
        "and gradients with the numpy reference. Exit 1 when a backend disagrees.",
    )
    p.add_argument("--net", choices=NET_NAMES, default="simple-conv", help="default: %(default)s")
    p.add_argument(
        "--backends",
        nargs="+",
        choices=ALL_BACKENDS,
        default=list(ALL_BACKENDS),
        metavar="BACKEND",
        help=f"backends to compare with numpy, among {' '.join(ALL_BACKENDS)} (default: all)",
    )
    p.add_argument("--batch", type=positive_int, default=8, help="default: %(default)s")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="default: %(default)s")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seeds weights and data (default: %(default)s)")
    p.set_defaults(run=run)


def build_named_net(name, backend, dtype, seed):
    """The net ``fastnet train --net NAME`` trains (its recipe's sizes), for an MNIST-shaped input."""
    from fastnet.training.config import RunConfig, build_net

    config = RunConfig.for_net(name, dtype=dtype, seed=seed)
    return build_net(config, backend, input_shape(name))


def input_shape(name, dataset=DEFAULT_DATASET):
    """One sample of ``dataset`` as the net ``name`` takes it (images, or flattened rows)."""
    from fastnet.datasets.catalog import input_shape as dataset_input_shape

    return dataset_input_shape(dataset, not net_entry(name).images)


def run(args):
    from fastnet.parity import TOLERANCE, compare_backends

    rng = numpy.random.default_rng(args.seed)
    x = rng.random((args.batch, *input_shape(args.net))).astype(args.dtype)
    t = rng.integers(0, 10, args.batch)
    reports = compare_backends(
        lambda backend: build_named_net(args.net, backend, args.dtype, args.seed),
        x,
        t,
        [b for b in args.backends if b != "numpy"],
        dtype=args.dtype,
    )
    print(f"fastnet check: {args.net}, {args.dtype}, batch {args.batch}, seed {args.seed}; reference: numpy")
    print(
        "difference = max|backend - numpy| / max|numpy| per array, from the same weights and batch; "
        f"agreement within {TOLERANCE[args.dtype]:g} ({args.dtype} round-off)"
    )
    for report in reports:
        print_report(report)
    bad = [r.backend for r in reports if not r.agrees]
    if bad:
        print(f"FAILED: {', '.join(bad)} disagree{'s' if len(bad) == 1 else ''} with numpy")
        return 1
    ran = [r.backend for r in reports if r.unavailable is None]
    if not ran:
        print("ok: nothing to compare: no backend other than numpy ran")
    else:
        print(f"ok: {', '.join(ran)} agree{'s' if len(ran) == 1 else ''} with numpy")
    return 0


def print_report(report):
    if report.unavailable is not None:
        print(f"\n{report.backend}: unavailable ({report.unavailable})")
        return
    if report.error is not None:
        print(f"\n{report.backend}: FAILED to run the pass ({report.error})")
        return
    print(f"\n{report.backend}:")
    print(f"  {'':<12}{'layer / param':<18}{'difference':>12}")
    for d in report.differences:
        flag = "" if d.value <= report.tolerance else "  <- disagrees"
        print(f"  {d.kind:<12}{d.name:<18}{d.value:>12.2e}{flag}")
    verdict = "agrees" if report.agrees else "DISAGREES"
    print(f"  {report.backend} {verdict}: worst difference {report.worst:.2e} (tolerance {report.tolerance:g})")
