"""Hostile checkpoint files cost neither memory nor time: zip bombs, lying headers, devices, FIFOs
and noise are refused with one line before any array is read.  Peak memory is measured in a
child process (the refusal must happen in the process that met the file)."""

import json
import os
import subprocess

import numpy
import pytest
from fastnet_cli import cli_env, command
from npz_factory import fastnet_header, npy_header, sparse_giant, stored, write_zip, zip_bomb
from peak_memory import MiB, cli_peak, python_peak

from fastnet.errors import CheckpointError
from fastnet.nets import TwoLayerNet
from fastnet.serialization import load_arrays, read_meta

DECLARED = 2384 * MiB  # the bombs' array: 2.5 GB of float32 zeros
SHAPE = f"({DECLARED // 4},)"
PEAK_LIMIT = 300 * MiB


def honest_arrays():
    """A TwoLayerNet(784, 50, 10)'s arrays but W1, which the hostile files replace."""
    return {k: v for k, v in TwoLayerNet(784, 50, 10, backend="numpy").state_arrays().items() if k != "W1"}


@pytest.fixture(scope="module")
def bomb(tmp_path_factory):
    """2.4 MB on disk, inflating honestly (deflate's ~1000:1) to 2.5 GB."""
    path = zip_bomb(tmp_path_factory.mktemp("bomb") / "bomb.npz", declared_bytes=DECLARED, others=honest_arrays())
    assert path.stat().st_size < 2.6 * 10**6
    return path


@pytest.fixture(scope="module")
def lying_bomb(tmp_path_factory):
    """2.2 MB on disk whose zip directory claims it inflates to 2.5 GB: more than deflate can."""
    return zip_bomb(tmp_path_factory.mktemp("lying") / "lying.npz", declared_bytes=DECLARED, zero_bytes=2200 * MiB)


@pytest.fixture(scope="module")
def giant(tmp_path_factory):
    """A 2.5 GB uncompressed W1 (a sparse file: no disk used): honest sizes, the wrong net."""
    return sparse_giant(tmp_path_factory.mktemp("giant") / "giant.npz", declared_bytes=DECLARED, others=honest_arrays())


def test_zip_bomb_is_refused_from_the_directory_by_the_cli(bomb, tmp_path):
    code, lines, peak = cli_peak(["eval", bomb, "--backend", "numpy"], tmp_path)
    assert code == 2 and len(lines) == 1, lines
    assert str(bomb) in lines[0] and "W1.npy" in lines[0] and "stores arrays uncompressed" in lines[0]
    assert peak < PEAK_LIMIT, f"peak RSS {peak / MiB:.0f} MiB"


def test_zip_bomb_is_refused_by_the_api(bomb, tmp_path):
    line, peak = python_peak(
        f"""
        from fastnet.nets import TwoLayerNet
        TwoLayerNet(784, 50, 10, backend="numpy").load_params({str(bomb)!r})
    """,
        tmp_path,
    )
    assert str(bomb) in line and "stores arrays uncompressed" in line
    assert peak < PEAK_LIMIT, f"peak RSS {peak / MiB:.0f} MiB"


def test_a_giant_array_is_refused_against_the_net_before_reading(giant, tmp_path):
    assert giant.stat().st_size > DECLARED
    line, peak = python_peak(
        f"""
        from fastnet.nets import TwoLayerNet
        TwoLayerNet(784, 50, 10, backend="numpy").load_params({str(giant)!r})
    """,
        tmp_path,
    )
    assert str(giant) in line and "W1" in line and SHAPE in line and "(784, 50)" in line
    assert peak < PEAK_LIMIT, f"peak RSS {peak / MiB:.0f} MiB"


def test_a_giant_array_is_refused_by_load_arrays_given_the_expected_arrays(giant, tmp_path):
    line, peak = python_peak(
        f"""
        from fastnet.nets import TwoLayerNet
        from fastnet.serialization import load_arrays
        net = TwoLayerNet(784, 50, 10, backend="numpy")
        load_arrays({str(giant)!r}, expected=lambda meta: net.state_arrays())
    """,
        tmp_path,
    )
    assert "W1" in line and SHAPE in line
    assert peak < PEAK_LIMIT, f"peak RSS {peak / MiB:.0f} MiB"


def test_metadata_reads_without_touching_the_arrays(giant):
    assert read_meta(giant) == {"kind": "checkpoint"}


def test_directory_claiming_more_than_deflate_can_give_is_refused_by_the_cli(lying_bomb, tmp_path):
    code, lines, peak = cli_peak(["eval", lying_bomb, "--backend", "numpy"], tmp_path)
    assert code == 2 and len(lines) == 1, lines
    assert str(lying_bomb) in lines[0] and "more than its compression can give" in lines[0]
    assert peak < PEAK_LIMIT, f"peak RSS {peak / MiB:.0f} MiB"
    with pytest.raises(CheckpointError, match="more than its compression can give"):
        load_arrays(lying_bomb)


def test_an_array_header_declaring_a_trillion_elements_is_called_corrupt(tmp_path):
    path = write_zip(
        tmp_path / "huge.npz",
        [stored("__fastnet__.npy", fastnet_header()), stored("W1.npy", npy_header((10**12,)) + bytes(400))],
    )
    code, lines, peak = cli_peak(["eval", path, "--backend", "numpy"], tmp_path)
    assert code == 2 and len(lines) == 1, lines
    assert "corrupt" in lines[0] and "(1000000000000,)" in lines[0] and "batch-size" not in lines[0]
    assert peak < PEAK_LIMIT
    with pytest.raises(CheckpointError, match="W1.*corrupt"):
        load_arrays(path)


@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_devices_and_fifos_are_refused_at_once(tmp_path, kind):
    if kind == "device":
        path, what = "/dev/zero", "character device"
    else:
        path, what = tmp_path / "pipe.npz", "FIFO"
        os.mkfifo(path)  # nobody ever writes: opening it for reading the usual way blocks forever
    for args in (
        ["eval", path, "--backend", "numpy"],
        ["train", "--resume", path, "--backend", "numpy", "--quiet", "--out", tmp_path / "out"],
    ):
        with open(tmp_path / "stderr", "w") as err:
            result = subprocess.run(
                command(*args), stdout=subprocess.DEVNULL, stderr=err, cwd=tmp_path, env=cli_env(tmp_path), timeout=60
            )
        lines = [line for line in (tmp_path / "stderr").read_text().splitlines() if line.strip()]
        assert result.returncode == 2 and len(lines) == 1, lines
        assert str(path) in lines[0] and what in lines[0] and "not a fastnet file" in lines[0]
    with pytest.raises(CheckpointError, match=what):
        TwoLayerNet(4, 3, 2).load_params(path)


def test_random_bytes_are_not_called_pickled(tmp_path):
    path = tmp_path / "noise.npz"
    path.write_bytes(numpy.random.default_rng(0).bytes(5000))
    with pytest.raises(CheckpointError) as info:
        load_arrays(path)
    message = str(info.value)
    assert "not a fastnet checkpoint" in message and "not a zip archive" in message
    assert "pickle" not in message


def test_a_real_pickle_is_named_as_one(tmp_path):
    import pickle

    path = tmp_path / "weights.pkl"
    path.write_bytes(pickle.dumps({"W1": [1.0, 2.0]}))
    with pytest.raises(CheckpointError, match="Python pickle, which fastnet never loads"):
        load_arrays(path)


@pytest.mark.parametrize(
    "member, why",
    [
        (("W1.npy", npy_header((3,), "|O") + bytes(24)), "pickled Python objects"),
        (("W1.npy", npy_header((2,), "<M8[s]") + bytes(16)), "dtype"),
        (("notes.txt", b"hello"), "not a .npy array"),
        (("W1.npy", npy_header((2,)) + bytes(9)), "holds 9"),
    ],
)
def test_members_numpy_savez_never_writes_are_refused(tmp_path, member, why):
    path = write_zip(tmp_path / "odd.npz", [stored("__fastnet__.npy", fastnet_header()), stored(*member)])
    with pytest.raises(CheckpointError, match=why):
        load_arrays(path)


def test_overlapping_members_are_refused(tmp_path):
    """A second directory entry for the same bytes: the classic way to multiply a bomb."""
    members = [stored("__fastnet__.npy", fastnet_header()), stored("W1.npy", npy_header((4,)) + bytes(16))]
    path = write_zip(tmp_path / "twice.npz", members, aliases={"W2.npy": 1})
    with pytest.raises(CheckpointError, match="overlap"):
        load_arrays(path)


def test_oversized_metadata_is_refused(tmp_path):
    huge = json.dumps({"format": "fastnet-arrays", "version": 1, "meta": {"pad": "x" * (5 << 20)}})
    numpy.savez(tmp_path / "fat.npz", __fastnet__=numpy.array(huge))
    with pytest.raises(CheckpointError, match="unknown header"):
        load_arrays(tmp_path / "fat.npz")


def checkpoint_arrays(net, optimizer):
    """What a training checkpoint of ``net`` and ``optimizer`` may hold: the way to call load_arrays."""
    expected = dict(net.state_arrays())
    for slot in optimizer.slots:
        expected.update({f"optim.{slot}.{key}": value for key, value in net.params.items()})
    return expected


def test_a_real_checkpoint_loads_against_its_net_and_optimizer(tmp_path):
    from fastnet.optim import Adam
    from fastnet.training.checkpoint import save_checkpoint

    net, optimizer = TwoLayerNet(6, 5, 3, backend="numpy", seed=0), Adam()
    x, t = numpy.random.default_rng(0).random((4, 6), dtype=numpy.float32), numpy.array([0, 1, 2, 1])
    optimizer.update(net.params, net.gradient(x, t))
    path = save_checkpoint(tmp_path / "checkpoint.npz", net, optimizer, {"epoch": 1, "step": 1, "iteration": 1}, {}, {})
    arrays, meta = load_arrays(path, expected=lambda meta: checkpoint_arrays(net, optimizer))
    assert meta["kind"] == "checkpoint" and set(arrays) == set(checkpoint_arrays(net, optimizer))
    for key, value in net.params.items():
        numpy.testing.assert_array_equal(arrays[key], value)
    arrays, _ = load_arrays(path, expected=net.state_arrays(), skip=("optim.",))  # evaluation
    assert set(arrays) == set(net.state_arrays())
    other = TwoLayerNet(6, 4, 3, backend="numpy")
    with pytest.raises(CheckpointError, match=r"W1 has shape \(6, 5\) but the net it must fit needs \(6, 4\)"):
        load_arrays(path, expected=checkpoint_arrays(other, Adam()))
    with pytest.raises(CheckpointError, match="unexpected optim"):
        load_arrays(path, expected=net.state_arrays())


def test_eval_and_resume_read_nothing_before_the_net_is_built(giant, tmp_path):
    """A real checkpoint's metadata over a 2.5 GB W1: both commands refuse it against the net."""
    from fastnet.optim import SGD
    from fastnet.training.checkpoint import save_checkpoint
    from fastnet.training.config import RunConfig

    config = RunConfig.for_net("two-layer", dataset="sample")
    real = save_checkpoint(
        tmp_path / "real.npz",
        TwoLayerNet(784, 50, 10, backend="numpy"),
        SGD(0.1),
        {"epoch": 0, "step": 0, "iteration": 0},
        config.to_dict(),
        {},
    )
    (tmp_path / "run").mkdir()
    path = sparse_giant(
        tmp_path / "run" / "checkpoint.npz", declared_bytes=DECLARED, meta=read_meta(real), others=honest_arrays()
    )
    for args in (["eval", path], ["train", "--resume", path, "--epochs", "2"]):
        code, lines, peak = cli_peak([*args, "--backend", "numpy"], tmp_path)
        assert code == 2 and len(lines) == 1, lines
        assert "W1" in lines[0] and SHAPE in lines[0] and "(784, 50)" in lines[0]
        assert peak < PEAK_LIMIT, f"{args[0]}: peak RSS {peak / MiB:.0f} MiB"
