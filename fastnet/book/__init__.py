"""The book's code, ready to run: its ``Trainer`` and its nets' constructors, with the book's
keyword names and weight files (``params.pkl``).  Change a book script's imports

    from fastnet.datasets import load_mnist
    from fastnet.book import SimpleConvNet, Trainer

and it runs as written, on any backend.
"""

from fastnet.book.nets import DeepConvNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from fastnet.book.pickles import RefusedPickle, load_pickled_arrays
from fastnet.book.trainer import Trainer

__all__ = [
    "DeepConvNet",
    "MultiLayerNet",
    "MultiLayerNetExtend",
    "RefusedPickle",
    "SimpleConvNet",
    "Trainer",
    "TwoLayerNet",
    "load_pickled_arrays",
]
