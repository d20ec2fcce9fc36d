"""The time-to-accuracy benchmark's PyTorch side: SimpleConvNet on MNIST as a plain PyTorch script.

The same data, split, net, recipe and evaluation as ``fastnet train --net simple-conv`` with the
recipe in ``time_to_accuracy.py``: fastnet's reader and validation split (so the images are the
same), conv 30x5x5 - ReLU - max-pool 2 - affine 100 - ReLU - affine 10 with N(0, 0.01) weights,
SGD with momentum 0.9, coupled L2 weight decay, the same warm-up and cosine rates per update
(fastnet.schedules), batch 100 in a fresh permutation every epoch, and after every epoch the
loss and accuracy on the same 10,000-image training sample as ``fastnet train`` (its default
``--train-eval``; ``--train-eval full`` for the whole set) and the full validation and test sets.
Tensors throughout, no DataLoader. Prints one line per epoch for the driver to time.

    python benchmarks/torch_simple_conv.py --data-dir ../shared/data/mnist --epochs 15
"""

import argparse
import time

import numpy
import torch
from torch import nn

from fastnet.datasets import load_dataset
from fastnet.datasets.split import validation_split
from fastnet.schedules import make_schedule
from fastnet.training.placing import train_eval_rows

BATCH, EVAL_BATCH = 100, 1000


def simple_conv(generator):
    net = nn.Sequential(
        nn.Conv2d(1, 30, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(30 * 12 * 12, 100),
        nn.ReLU(),
        nn.Linear(100, 10),
    )
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                layer.weight.normal_(0.0, 0.01, generator=generator)
                layer.bias.zero_()
    return net


def evaluate(net, x, t):
    loss, correct = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(x), EVAL_BATCH):
            out = net(x[start : start + EVAL_BATCH])
            loss += float(nn.functional.cross_entropy(out, t[start : start + EVAL_BATCH], reduction="sum"))
            correct += int((out.argmax(1) == t[start : start + EVAL_BATCH]).sum())
    return loss / len(x), correct / len(x)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--weight-decay", type=float, default=0.0005)
    parser.add_argument("--warmup-epochs", type=float, default=1.0)
    parser.add_argument("--val-split", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-eval", default="10000", help="as fastnet train's: N or full")
    args = parser.parse_args()
    train_eval = args.train_eval if args.train_eval == "full" else int(args.train_eval)

    data = load_dataset("mnist", flatten=False, data_dir=args.data_dir, download=False, progress=False)
    train, val = validation_split(data.t_train, args.val_split, args.seed)
    as_x, as_t = (lambda a: torch.from_numpy(numpy.ascontiguousarray(a))), (lambda a: torch.from_numpy(a).long())
    x_train, t_train = as_x(data.x_train[train]), as_t(data.t_train[train])
    x_val, t_val = as_x(data.x_train[val]), as_t(data.t_train[val])
    x_test, t_test = as_x(data.x_test), as_t(data.t_test)
    sample = train_eval_rows(len(x_train), train_eval, args.seed)  # fastnet train's training sample
    x_eval, t_eval = (x_train, t_train) if sample is None else (x_train[sample], t_train[sample])
    generator = torch.Generator().manual_seed(args.seed)
    net = simple_conv(generator)
    steps = len(x_train) // BATCH
    schedule = make_schedule("cosine", args.lr, args.epochs, steps, warmup_epochs=args.warmup_epochs)
    optimizer = torch.optim.SGD(net.parameters(), lr=args.lr, momentum=0.9, weight_decay=args.weight_decay)
    print(
        f"ready: {len(x_train)} train, {len(x_val)} validation, {len(x_test)} test; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads",
        flush=True,
    )
    iteration = 0
    for epoch in range(1, args.epochs + 1):
        started = time.perf_counter()
        net.train()
        order = torch.randperm(len(x_train), generator=generator)
        for step in range(steps):
            rows = order[step * BATCH : (step + 1) * BATCH]
            for group in optimizer.param_groups:
                group["lr"] = schedule.lr_at(iteration)
            optimizer.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(net(x_train[rows]), t_train[rows]).backward()
            optimizer.step()
            iteration += 1
        net.eval()
        train_loss, train_acc = evaluate(net, x_eval, t_eval)
        val_loss, val_acc = evaluate(net, x_val, t_val)
        test_loss, test_acc = evaluate(net, x_test, t_test)
        print(
            f"epoch {epoch}/{args.epochs}: train loss {train_loss:.4f} acc {train_acc:.4f}, val loss "
            f"{val_loss:.4f} acc {val_acc:.4f}, test loss {test_loss:.4f} acc {test_acc:.4f} "
            f"({time.perf_counter() - started:.1f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
