"""Class probabilities from a net's scores: a row-wise softmax on the scores' own backend."""


def softmax(xp, scores):
    """Stable for large scores (the row maximum is subtracted first); keeps the scores' dtype."""
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = xp.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
