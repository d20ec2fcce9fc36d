"""fastnet train: learn MNIST (or Fashion-MNIST) with one of the classic nets."""
from __future__ import annotations

import time
from pathlib import Path

from fastnet.cli.backend_choice import add_backend_options, choose_backend
from fastnet.cli.parser import fraction, non_negative_float, positive_float, positive_int
from fastnet.training.config import NET_NAMES, RunConfig

# The classic recipe of each net; explicit options override it.
RECIPES = {
    "two-layer": dict(optimizer="sgd", lr=0.1, epochs=17, hidden=[50]),
    "mlp": dict(optimizer="sgd", lr=0.1, epochs=20, hidden=[100, 100, 100, 100, 100]),
    "simple-conv": dict(optimizer="adam", lr=0.001, epochs=20, hidden=[100]),
    "deep-conv": dict(optimizer="adam", lr=0.001, epochs=20, hidden=[50]),
}
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")


def register(sub):
    p = sub.add_parser("train", help="train a net and save history, curves and a checkpoint",
                       description="Train a classic net. Defaults reproduce the classic TwoLayerNet run "
                                   "(784-50-10, batch 100, SGD lr 0.1, 17 epochs).")
    p.add_argument("--net", choices=NET_NAMES, default=None, help="architecture (default: two-layer)")
    add_backend_options(p)
    p.add_argument("--dataset", choices=("mnist", "fashion-mnist", "sample"), default=None,
                   help="data set (default: mnist; the embedded sample where it cannot be had)")
    p.add_argument("--data-dir", default=None, help="folder holding the four IDX files")
    p.add_argument("--epochs", type=positive_int, default=None)
    p.add_argument("--batch-size", type=positive_int, default=None, help="default: 100")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: the net's recipe)")
    p.add_argument("--optimizer", choices=OPTIMIZER_NAMES, default=None)
    p.add_argument("--hidden", type=positive_int, nargs="+", default=None, help="hidden layer sizes")
    p.add_argument("--weight-decay", type=non_negative_float, default=None, help="L2 lambda (mlp)")
    p.add_argument("--dropout", type=fraction, default=None, help="dropout ratio (mlp; 0 = off)")
    p.add_argument("--batchnorm", action="store_true", default=None, help="batch normalisation (mlp)")
    p.add_argument("--dtype", choices=("float32", "float64"), default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", default=None, help="output folder (default: runs/<net>-<dataset>-<time>)")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT", help="continue a run from its checkpoint")
    p.add_argument("--limit", type=positive_int, default=None, help="use only the first N training samples")
    p.add_argument("--quiet", action="store_true", help="no progress bar; one log line per epoch")
    p.set_defaults(run=run)


def config_from_args(args, base: RunConfig | None) -> RunConfig:
    """Options given on the command line override the checkpoint's (or the recipe's) values."""
    net = args.net or (base.net if base else "two-layer")
    values = (base.to_dict() if base else {**RunConfig().to_dict(), **RECIPES[net], "net": net})
    given = {"net": args.net, "dataset": args.dataset, "epochs": args.epochs,
             "batch_size": args.batch_size, "lr": args.lr, "optimizer": args.optimizer,
             "hidden": args.hidden, "weight_decay": args.weight_decay, "dropout": args.dropout,
             "batchnorm": args.batchnorm, "dtype": args.dtype, "seed": args.seed}
    values.update({k: v for k, v in given.items() if v is not None})
    return RunConfig.from_dict(values).check()


def run(args):
    from fastnet.datasets import load_dataset
    from fastnet.optim import make_optimizer
    from fastnet.training import Trainer, build_net
    from fastnet.training.checkpoint import read_checkpoint, restore_checkpoint
    from fastnet.training.plot import plot_history

    say = print
    checkpoint = read_checkpoint(args.resume) if args.resume else None
    base = RunConfig.from_dict(checkpoint[1]["config"]) if checkpoint else None
    config = config_from_args(args, base)
    selection = choose_backend(args)
    backend = selection.backend

    data = load_dataset(config.dataset, data_dir=args.data_dir, flatten=config.flatten,
                        progress=not args.quiet)
    say(f"data: {data.name} from {data.source} ({data.x_train.shape[0]:,} train, "
        f"{data.x_test.shape[0]:,} test)")
    x_train, t_train = data.x_train, data.t_train
    if args.limit:
        x_train, t_train = x_train[:args.limit], t_train[:args.limit]

    net = build_net(config, backend, x_train.shape[1:], output_size=10)
    optimizer = make_optimizer(config.optimizer, config.lr)
    if args.out:
        out_dir = Path(args.out)
    elif args.resume:
        out_dir = Path(args.resume).parent
    else:
        out_dir = Path("runs") / f"{config.net}-{config.dataset}-{time.strftime('%Y%m%d-%H%M%S')}"
    run_info = {**config.to_dict(), "backend": backend.name, "data_source": str(data.source)}
    trainer = Trainer(net, optimizer, x_train, t_train, data.x_test, data.t_test, epochs=config.epochs,
                      batch_size=config.batch_size, seed=config.seed, out_dir=out_dir,
                      progress=not args.quiet, log=say, config=run_info)
    if checkpoint:
        arrays, meta = checkpoint
        restore_checkpoint(net, optimizer, arrays, meta, args.resume)
        trainer.restore_progress(meta["progress"], meta["history"])
        say(f"resuming {args.resume} at epoch {trainer.epoch + 1}, step {trainer.step}")
    say(f"net: {config.net} ({sum(int(v.size) for v in net.params.values()):,} parameters), "
        f"{config.optimizer} lr {config.lr}, batch {config.batch_size}, {config.epochs} epochs, {config.dtype}")

    history = trainer.fit()
    plot_path = plot_history(history, out_dir / "curves.png",
                             title=f"{config.net} on {data.name} ({backend.name})")
    print_summary(say, backend, history, out_dir, plot_path)
    return 0


def print_summary(say, backend, history, out_dir, plot_path):
    data = history.to_dict()
    seconds = data["epoch_seconds"]
    rates = data["samples_per_second"]
    say(f"backend used: {backend.name}")
    if data["epoch"]:
        test = data["test_acc"][-1]
        say(f"final accuracy: train {data['train_acc'][-1]:.4f}, test {test:.4f}")
        say(f"time: {sum(seconds) / len(seconds):.2f} s per epoch, "
            f"{sum(rates) / len(rates):,.0f} samples/s")
    say(f"outputs: {out_dir / 'history.json'}, {plot_path}, {out_dir / 'checkpoint.npz'}")
