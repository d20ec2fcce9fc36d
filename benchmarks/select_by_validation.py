"""Model selection on a validation split through the public API: train on the training set less a
seeded, stratified validation split (5,000 images), choose the epoch by validation accuracy and
report that epoch's test accuracy, with a cosine learning-rate schedule.

The same split, schedule and choice as ``fastnet train --val-split 5000 --lr-schedule cosine
--keep-best``, written out with the API (the optimizer's rate is set by the schedule before each
update); the README's DeepConvNet row was measured with it:

    python benchmarks/select_by_validation.py --net deep-conv --epochs 12 \
        --data-dir ../shared/data/mnist --out benchmarks/results/deep-conv-selected.json
"""
import argparse
import json
import time


from fastnet import get_backend
from fastnet.catalog import net_entry
from fastnet.datasets import load_dataset
from fastnet.datasets.split import validation_split
from fastnet.optim import make_optimizer
from fastnet.schedules import make_schedule
from fastnet.threads import threads_for, using_threads
from fastnet.training import Trainer, RunConfig, build_net
from fastnet.training.evaluation import evaluate

p = argparse.ArgumentParser()
p.add_argument("--net", default="deep-conv")
p.add_argument("--dataset", default="mnist")
p.add_argument("--data-dir", required=True)
p.add_argument("--epochs", type=int, default=12)
p.add_argument("--lr", type=float, default=0.001)
p.add_argument("--optimizer", default="adam")
p.add_argument("--schedule", default="cosine")
p.add_argument("--hidden", type=int, nargs="+", default=None)
p.add_argument("--val", type=int, default=5000)
p.add_argument("--seed", type=int, default=0)
p.add_argument("--out", required=True)
args = p.parse_args()

backend = get_backend("numba")
config = RunConfig.for_net(args.net, seed=args.seed, **({"hidden": args.hidden} if args.hidden else {}))
data = load_dataset(args.dataset, data_dir=args.data_dir, flatten=not net_entry(args.net).images, progress=False)
train_idx, val_idx = validation_split(data.t_train, args.val, seed=args.seed)
x_tr, t_tr = data.x_train[train_idx], data.t_train[train_idx]
x_val, t_val = data.x_train[val_idx], data.t_train[val_idx]
net = build_net(config, backend, x_tr.shape[1:])
opt = make_optimizer(args.optimizer, args.lr)
steps = -(-len(x_tr) // 100)
schedule = make_schedule(args.schedule, args.lr, args.epochs, steps)


class Scheduled:
    """The optimizer with its rate set by the schedule before every update."""
    def __init__(self, opt):
        self.opt = opt
        self.slots = getattr(opt, "slots", ())

    def update(self, params, grads):
        schedule.apply(self.opt)
        self.opt.update(params, grads)

    def state_dict(self, *a):
        return self.opt.state_dict(*a)


rows = []
x_test = backend.asarray(data.x_test)
t_test = backend.asarray(data.t_test)


def after_epoch(trainer):
    test_loss, test_acc = evaluate(trainer.net, x_test, t_test)
    h = trainer.history.to_dict()
    row = {"epoch": trainer.epoch, "val_acc": h["test_acc"][-1], "val_loss": h["test_loss"][-1],
           "test_acc": test_acc, "test_loss": test_loss, "train_acc": h["train_acc"][-1],
           "lr": opt.lr, "seconds": h["epoch_seconds"][-1]}
    rows.append(row)
    print(json.dumps(row), flush=True)


trainer = Trainer(net, Scheduled(opt), x_tr, t_tr, x_val, t_val, epochs=args.epochs, seed=args.seed,
                  progress=False, log=print)
trainer.after_epoch = after_epoch
start = time.time()
with using_threads(threads_for(net, x_tr.shape[1:], 100)):
    trainer.fit()
best = max(rows, key=lambda r: (r["val_acc"], -r["epoch"]))
result = {"net": args.net, "dataset": args.dataset, "epochs": args.epochs, "optimizer": args.optimizer,
          "lr": args.lr, "schedule": args.schedule, "val": args.val, "seed": args.seed,
          "chosen_epoch": best["epoch"], "chosen_val_acc": best["val_acc"], "test_acc_at_chosen": best["test_acc"],
          "final_test_acc": rows[-1]["test_acc"], "wall_seconds": time.time() - start, "epochs_detail": rows}
print(json.dumps({k: v for k, v in result.items() if k != "epochs_detail"}))
with open(args.out, "w") as f:
    json.dump(result, f, indent=1)
