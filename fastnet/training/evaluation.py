"""A whole set's loss and accuracy, and the seed of each epoch's batches."""
import numpy

from fastnet import catalog


def epoch_seed(seed: int, epoch: int) -> int:
    """Each epoch's permutation comes from (seed, epoch): resuming needs no generator state."""
    return int(numpy.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def evaluate(net, x, t, batch_size=catalog.EVAL_BATCH):
    """Mean cross-entropy and accuracy over a whole set, in batches (no weight decay term)."""
    n = x.shape[0]
    total_loss = 0.0
    correct = 0
    for rows, y in net.predict_batches(x, batch_size):
        tb = t[rows]
        total_loss = total_loss + net.lastLayer.forward(y, tb) * y.shape[0]
        labels = tb if tb.ndim == 1 else tb.argmax(axis=1)
        correct = correct + (y.argmax(axis=1) == labels).sum()
    return float(total_loss) / n, float(correct) / n
