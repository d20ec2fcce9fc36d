"""fastnet gradcheck: a net's backprop gradients against numerical ones, per parameter."""
import numpy

from fastnet.cli.backend_choice import add_backend_options, choose_backend
from fastnet.training.config import NET_NAMES

# Small float64 versions of each net: a numerical gradient costs two forward passes per parameter.
def make_small_net(name, backend, seed):
    from fastnet.nets import DeepConvNet, MultiLayerNet, SimpleConvNet, TwoLayerNet

    common = dict(backend=backend, dtype="float64", seed=seed)
    if name == "two-layer":
        return TwoLayerNet(16, 10, 10, weight_init_std=0.3, **common), (16,)
    if name == "mlp":
        return MultiLayerNet(16, [10, 8], 10, use_batchnorm=True, weight_decay_lambda=0.01, **common), (16,)
    if name == "simple-conv":
        conv = {"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 1}
        return SimpleConvNet((1, 8, 8), conv, hidden_size=10, weight_init_std=0.3, **common), (1, 8, 8)
    return DeepConvNet((1, 8, 8), hidden_size=6, dropout_ratio=0.0, **common), (1, 8, 8)


def register(sub):
    p = sub.add_parser("gradcheck", help="compare backprop with numerical gradients (float64)")
    p.add_argument("--net", choices=NET_NAMES, default="two-layer")
    p.add_argument("--batch", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-entries", type=int, default=200,
                   help="check this many random entries per parameter (default: %(default)s; 0 = all)")
    p.add_argument("--tolerance", type=float, default=1e-6, help="largest relative error that passes")
    add_backend_options(p, default="numpy")
    p.set_defaults(run=run)


def run(args):
    from fastnet.gradcheck import check_net_gradients

    backend = choose_backend(args).backend
    net, shape = make_small_net(args.net, backend, args.seed)
    rng = numpy.random.default_rng(args.seed)
    x = backend.asarray(rng.standard_normal((args.batch, *shape)))
    t = backend.asarray(rng.integers(0, 10, args.batch))
    for key in net.params:
        if key.startswith("b"):
            # Zero biases put ReLUs fed only by padding exactly on their kink.
            net.params[key][...] = backend.asarray(0.1 * rng.standard_normal(net.params[key].shape))
    report = check_net_gradients(net, x, t, max_entries=args.max_entries or None, seed=args.seed,
                                 tolerance=args.tolerance)
    print(f"{'param':<10}{'shape':<18}{'max rel error':>15}{'mean abs diff':>15}")
    for row in report:
        shape_text = str(tuple(net.params[row.name].shape))
        print(f"{row.name:<10}{shape_text:<18}{row.max_relative_error:>15.2e}{row.mean_absolute_difference:>15.2e}")
    worst = max(r.max_relative_error for r in report)
    verdict = "ok" if worst < args.tolerance else "FAILED"
    print(f"{verdict}: worst relative error {worst:.2e} (tolerance {args.tolerance:g})")
    return 0 if worst < args.tolerance else 1
