"""Datasets: MNIST and Fashion-MNIST from IDX files (local, cached or downloaded), and an
embedded 12,000-image MNIST sample for offline use.

Importing this package touches only numpy and the standard library; urllib and tqdm load
when a download starts.
"""

from fastnet.datasets.mnist import DATASET_NAMES, Dataset, load_dataset, load_fashion_mnist, load_mnist

__all__ = ["DATASET_NAMES", "Dataset", "load_dataset", "load_fashion_mnist", "load_mnist"]
