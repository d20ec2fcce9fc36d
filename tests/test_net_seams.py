"""The seams a data-parallel run uses, on one process: the batch-statistics hook of
BatchNormalization (one forward, the hook supplies the sums) and the net's random streams.  A rank
with an empty slice is tested in real mpiexec jobs (test_distributed.py)."""

import numpy

from fastnet.distributed.base import SingleProcess
from fastnet.distributed.sync_batchnorm import GlobalBatchStatistics
from fastnet.layers import BatchNormalization
from fastnet.nets import MultiLayerNet


def bn_net():
    return MultiLayerNet(
        6, [5, 4], 3, use_batchnorm=True, use_dropout=True, dropout_ratio=0.2, dtype="float64", seed=1, backend="numpy"
    )


def test_global_statistics_on_one_rank_are_the_batch_statistics():
    rng = numpy.random.default_rng(0)
    x, t = rng.standard_normal((8, 6)), rng.integers(0, 3, 8)
    plain, shared = bn_net(), bn_net()
    layers = shared.share_batch_statistics(lambda: GlobalBatchStatistics(SingleProcess()))
    assert [type(layer) for layer in layers] == [BatchNormalization, BatchNormalization]
    assert all(isinstance(layer.statistics, GlobalBatchStatistics) for layer in layers)
    assert plain.layers["BatchNorm1"].statistics is None
    want, got = plain.gradient(x, t), shared.gradient(x, t)
    # float64, sums over 8 rows: the two formulas of dx differ by a few ulps of the largest term.
    for key in want:
        scale = max(float(numpy.abs(want[key]).max()), 1.0)
        numpy.testing.assert_allclose(
            got[key], want[key], rtol=0, atol=64 * numpy.finfo(float).eps * scale, err_msg=key
        )
    for key, value in plain.state_dict().items():
        if isinstance(value, numpy.ndarray):
            numpy.testing.assert_allclose(shared.state_dict()[key], value, rtol=1e-14, atol=1e-15, err_msg=key)
    # The global count stays an array on the backend's device, never a host float.
    assert isinstance(layers[0].statistics.scale, numpy.generic | numpy.ndarray)


def test_random_streams_are_found_and_reseeded_through_the_net():
    net = bn_net()
    assert list(net.random_streams()) == ["Dropout1", "Dropout2"]
    states = net.random_stream_states()
    assert set(states) == {"Dropout1", "Dropout2"} and all("rng" in s for s in states.values())
    net.reseed_random_streams(lambda index, seed: 100 + index)
    assert [layer.seed for layer in net.random_streams().values()] == [100, 101]
    again = bn_net()
    again.reseed_random_streams(lambda index, seed: 100 + index)
    assert net.random_stream_states() == again.random_stream_states()
    net.reseed_random_streams(lambda index, seed: None)  # None leaves a stream as it is
    assert net.random_stream_states() == again.random_stream_states()
