"""The book's ``Trainer`` (``common/trainer.py``): its signature, attributes and printout.

Two things differ, on purpose: minibatches are drawn without replacement (a fresh permutation
each epoch, not ``np.random.choice`` with repeats), and the loss logged per step is the one the
gradient's forward pass computed (no second forward pass).  Data go to the net's backend and
dtype once, at the start. Without ``seed=``, the minibatch order follows ``np.random.seed``.
"""

from __future__ import annotations

import math

from fastnet.book.seeds import seed_or_global
from fastnet.errors import InputError
from fastnet.optim import OPTIMIZERS


class Trainer:
    def __init__(
        self,
        network,
        x_train,
        t_train,
        x_test,
        t_test,
        epochs=20,
        mini_batch_size=100,
        optimizer="SGD",
        optimizer_param=None,
        evaluate_sample_num_per_epoch=None,
        verbose=True,
        seed=None,
    ):
        name = str(optimizer).lower()
        if name not in OPTIMIZERS:
            raise InputError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        self.network = network
        self.verbose = verbose
        backend = network.backend
        self.x_train, self.t_train = backend.asarray(x_train, dtype=network.dtype), backend.asarray(t_train)
        self.x_test, self.t_test = backend.asarray(x_test, dtype=network.dtype), backend.asarray(t_test)
        self.epochs = epochs
        self.batch_size = mini_batch_size
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        self.optimizer = OPTIMIZERS[name](**dict(optimizer_param or {"lr": 0.01}))
        self.train_size = self.x_train.shape[0]
        self.iter_per_epoch = max(self.train_size / mini_batch_size, 1)
        self.max_iter = int(epochs * self.iter_per_epoch)
        self.current_iter = 0
        self.current_epoch = 0
        self.train_loss_list = []
        self.train_acc_list = []
        self.test_acc_list = []
        self._rng = backend.rng(seed_or_global(seed))
        self._order = None
        self._batches_per_pass = max(math.ceil(self.train_size / mini_batch_size), 1)

    def _next_batch(self):
        i = self.current_iter % self._batches_per_pass
        if i == 0 or self._order is None:
            self._order = self._rng.permutation(self.train_size)
        return self._order[i * self.batch_size : (i + 1) * self.batch_size]

    def train_step(self):
        rows = self._next_batch()
        grads = self.network.gradient(self.x_train[rows], self.t_train[rows])
        self.optimizer.update(self.network.params, grads)
        loss = float(self.network.last_loss)
        self.train_loss_list.append(loss)
        if self.verbose:
            print("train loss:" + str(loss))
        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1
            count = self.evaluate_sample_num_per_epoch
            n_train = self.train_size if count is None else count
            n_test = self.x_test.shape[0] if count is None else count
            train_acc = self.network.accuracy(self.x_train[:n_train], self.t_train[:n_train])
            test_acc = self.network.accuracy(self.x_test[:n_test], self.t_test[:n_test])
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            if self.verbose:
                print(f"=== epoch:{self.current_epoch}, train acc:{train_acc}, test acc:{test_acc} ===")
        self.current_iter += 1

    def train(self):
        for _ in range(self.max_iter):
            self.train_step()
        test_acc = self.network.accuracy(self.x_test, self.t_test)
        if self.verbose:
            print("=============== Final Test Accuracy ===============")
            print("test acc:" + str(test_acc))
        return test_acc
