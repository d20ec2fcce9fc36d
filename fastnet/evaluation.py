"""A whole set's loss and accuracy, in batches: what a trainer and each rank of a job report."""

from fastnet import catalog


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
