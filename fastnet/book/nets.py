"""The book's nets under their book constructors: a book script runs with its imports changed.

Each is the fastnet net (any backend, float32 by default) with the book's keyword names and
its weight files: ``save_params``/``load_params`` on a ``.pkl`` path read and write the book's
pickled dict of arrays (through a reader that refuses anything but arrays), any other path a
fastnet parameter file. Without ``seed=``, a net takes its seed from numpy's global generator, as
the book's ``np.random.randn`` does, so ``np.random.seed(...)`` repeats a book script's run.
"""

from __future__ import annotations

from fastnet import nets
from fastnet.book.seeds import seed_or_global
from fastnet.errors import InputError

BOOK_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


def _is_pickle(path) -> bool:
    return str(path).endswith((".pkl", ".pickle"))


class BookNet:
    """The book's seeding (numpy's global generator) and weight files (``params.pkl``)."""

    def __init__(self, *args, seed=None, **options):
        super().__init__(*args, seed=seed_or_global(seed), **options)  # type: ignore[call-arg]

    def save_params(self, file_name="params.pkl"):
        if _is_pickle(file_name):
            from fastnet.book.pickles import save_book_params

            return save_book_params(self, file_name)
        return super().save_params(file_name)

    def load_params(self, file_name="params.pkl"):
        if _is_pickle(file_name):
            from fastnet.book.pickles import load_book_params

            return load_book_params(self, file_name)
        return super().load_params(file_name)


class TwoLayerNet(BookNet, nets.TwoLayerNet):
    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, **options):
        super().__init__(input_size, hidden_size, output_size, weight_init_std, **options)


class SimpleConvNet(BookNet, nets.SimpleConvNet):
    def __init__(
        self, input_dim=(1, 28, 28), conv_param=None, hidden_size=100, output_size=10, weight_init_std=0.01, **options
    ):
        super().__init__(
            input_dim, {**BOOK_CONV, **(conv_param or {})}, hidden_size, output_size, weight_init_std, **options
        )


DEEP_CONVS = [{"filter_num": f, "filter_size": s, "pad": p, "stride": 1} for f, s, p in nets.DeepConvNet.CONVS]


class DeepConvNet(BookNet, nets.DeepConvNet):
    """``conv_param_1`` ... ``conv_param_6`` as in the book (stride 1, as the book uses)."""

    def __init__(
        self,
        input_dim=(1, 28, 28),
        conv_param_1=None,
        conv_param_2=None,
        conv_param_3=None,
        conv_param_4=None,
        conv_param_5=None,
        conv_param_6=None,
        hidden_size=50,
        output_size=10,
        **options,
    ):
        given = (conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6)
        convs = [{**default, **(param or {})} for default, param in zip(DEEP_CONVS, given, strict=True)]
        if any(c["stride"] != 1 for c in convs):
            raise InputError("DeepConvNet convolutions take stride 1 here, as in the book")
        self.CONVS = tuple((c["filter_num"], c["filter_size"], c["pad"]) for c in convs)
        super().__init__(input_dim, output_size=output_size, hidden_size=hidden_size, **options)


class MultiLayerNet(BookNet, nets.MultiLayerNet):
    def __init__(
        self,
        input_size,
        hidden_size_list,
        output_size,
        activation="relu",
        weight_init_std="relu",
        weight_decay_lambda=0,
        **options,
    ):
        super().__init__(
            input_size, hidden_size_list, output_size, activation, weight_init_std, weight_decay_lambda, **options
        )


class MultiLayerNetExtend(BookNet, nets.MultiLayerNet):
    """The book's spelling ``dropout_ration`` is taken (and ``dropout_ratio``)."""

    def __init__(
        self,
        input_size,
        hidden_size_list,
        output_size,
        activation="relu",
        weight_init_std="relu",
        weight_decay_lambda=0,
        use_dropout=False,
        dropout_ration=0.5,
        use_batchnorm=False,
        **options,
    ):
        ratio = options.pop("dropout_ratio", dropout_ration)
        super().__init__(
            input_size,
            hidden_size_list,
            output_size,
            activation,
            weight_init_std,
            weight_decay_lambda,
            use_dropout=use_dropout,
            dropout_ratio=ratio,
            use_batchnorm=use_batchnorm,
            **options,
        )
