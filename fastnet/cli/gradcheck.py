"""fastnet gradcheck: a net's backprop gradients against numerical ones, per parameter."""

import numpy

from fastnet import catalog
from fastnet.cli.backend_choice import add_backend_options, choose_backend
from fastnet.cli.parser import non_negative_int, number_option, positive_int
from fastnet.gradcheck import MIN_TOLERANCE

tolerance = number_option(float, lambda v: MIN_TOLERANCE <= v < 1, f"a tolerance from {MIN_TOLERANCE:g} to 1")


def register(sub):
    p = sub.add_parser("gradcheck", help="compare backprop with numerical gradients (float64)")
    p.add_argument(
        "--net",
        choices=catalog.NET_NAMES,
        default=catalog.DEFAULT_NET,
        help="a small float64 version of this net (default: %(default)s)",
    )
    p.add_argument("--batch", type=positive_int, default=3, help="samples (default: %(default)s)")
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=catalog.DEFAULT_SEED,
        help="seeds weights and data (default: %(default)s)",
    )
    p.add_argument(
        "--max-entries",
        type=non_negative_int,
        default=200,
        help="check this many random entries per parameter (default: %(default)s; 0 = all)",
    )
    p.add_argument(
        "--tolerance", type=tolerance, default=1e-6, help="largest relative error that passes (default: %(default)s)"
    )
    add_backend_options(p, default="numpy")
    p.set_defaults(run=run)


def run(args):
    from fastnet.gradcheck import check_net_gradients

    backend = choose_backend(args).backend
    net, shape = catalog.net_entry(args.net).small(backend, args.seed)
    rng = numpy.random.default_rng(args.seed)
    x = backend.asarray(rng.standard_normal((args.batch, *shape)))
    t = backend.asarray(rng.integers(0, 10, args.batch))
    for key in net.params:
        if key.startswith("b"):
            # Zero biases put ReLUs fed only by padding exactly on their kink.
            net.params[key][...] = backend.asarray(0.1 * rng.standard_normal(net.params[key].shape))
    print(
        f"checking {len(net.params)} parameters of {args.net} (float64, batch {args.batch}); "
        f"each row appears when its parameter is done",
        flush=True,
    )
    print(f"{'param':<10}{'shape':<18}{'max rel error':>15}{'mean abs diff':>15}", flush=True)

    def show_row(row):
        shape_text = str(tuple(net.params[row.name].shape))
        print(
            f"{row.name:<10}{shape_text:<18}{row.max_relative_error:>15.2e}{row.mean_absolute_difference:>15.2e}",
            flush=True,
        )

    report = check_net_gradients(
        net, x, t, max_entries=args.max_entries or None, seed=args.seed, tolerance=args.tolerance, on_param=show_row
    )
    worst = max(r.max_relative_error for r in report)
    verdict = "ok" if worst < args.tolerance else "FAILED"
    print(f"{verdict}: worst relative error {worst:.2e} (tolerance {args.tolerance:g})")
    return 0 if worst < args.tolerance else 1
