"""fastnet predict on users' pictures: a trained net recognises dark-on-white PNGs of any size as
well as the test set, and every bad file is one line while the others are still predicted."""

import json
import zlib
from pathlib import Path

import numpy
import pytest
from fastnet_cli import run_cli

pytest.importorskip("PIL", reason="Pillow reads the pictures (pip install pillow)")
from user_images import user_style_png  # needs Pillow

COUNT = 1000


@pytest.fixture(scope="module")
def trained(tmp_path_factory, request):
    from conftest import _mnist_dir

    data = _mnist_dir()
    if data is None:
        pytest.skip("full MNIST files not found (set FASTNET_MNIST_DIR or place ../shared/data/mnist)")
    out = tmp_path_factory.mktemp("run")
    done = run_cli(
        "train",
        "--net",
        "two-layer",
        "--epochs",
        "3",
        "--data-dir",
        data,
        "--out",
        out / "run",
        "--backend",
        "numpy",
        "--quiet",
        tmp_path=out,
    )
    assert done.returncode == 0, done.stderr
    return out / "run" / "checkpoint.npz", data


def test_user_style_pngs_score_like_the_test_set(trained, tmp_path):
    import fastnet
    from fastnet.datasets import load_mnist

    checkpoint, data = trained
    (_, _), (x_test, t_test) = load_mnist(data_dir=data)
    rng = numpy.random.default_rng(7)
    picked = rng.choice(len(x_test), COUNT, replace=False)
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in picked:
        user_style_png(x_test[i], folder / f"{i:05d}.png", rng)
    net = fastnet.load(checkpoint, backend="numpy")
    test_acc = net.accuracy(x_test[picked], t_test[picked])
    done = run_cli("predict", checkpoint, folder, "--json", tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert len(results) == COUNT
    predicted = {r["file"].rsplit("/", 1)[1]: r["top"][0]["class"] for r in results}
    correct = sum(predicted[f"{i:05d}.png"] == t_test[i] for i in picked)
    assert abs(correct / COUNT - test_acc) <= 0.01, (correct / COUNT, test_acc)


def test_bad_files_are_one_line_each_and_the_rest_is_predicted(trained, tmp_path):
    from fastnet.datasets import load_mnist

    checkpoint, data = trained
    (_, _), (x_test, t_test) = load_mnist(data_dir=data)
    good = user_style_png(x_test[0], tmp_path / "good.png", numpy.random.default_rng(0))
    (tmp_path / "text.png").write_text("not a picture")
    (tmp_path / "truncated.png").write_bytes(good.read_bytes()[:200])
    from PIL import Image

    Image.new("L", (300, 200), 255).save(tmp_path / "blank.png")
    Image.new("L", (1, 1), 0).save(tmp_path / "dot.png")
    # Decompression bombs: valid PNG headers declaring 10^10 pixels (beyond Pillow's own limit)
    # and 10^8 (where Pillow only warns: fastnet refuses it in its one line, with no warning)
    for name, side in (("bomb.png", 100_000), ("bomb2.png", 10_000)):
        ihdr = b"IHDR" + side.to_bytes(4, "big") * 2 + bytes([8, 0, 0, 0, 0])
        png = b"\x89PNG\r\n\x1a\n" + (13).to_bytes(4, "big") + ihdr + zlib.crc32(ihdr).to_bytes(4, "big")
        (tmp_path / name).write_bytes(png)
    bad = ["text.png", "truncated.png", "blank.png", "dot.png", "bomb.png", "bomb2.png"]
    done = run_cli("predict", checkpoint, good, *(tmp_path / b for b in bad), "--top", "3", tmp_path=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == len(bad), done.stderr
    for name, line in zip(bad, lines, strict=True):
        assert line.startswith("fastnet: error: ") and name in line
    assert "Traceback" not in done.stderr
    assert "blank" in lines[2] and "1x1" in lines[3] and "bomb" in lines[4] and "bomb" in lines[5]
    out = done.stdout.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(str(good)) and out[0].count(",") == 2
    assert out[0].split(": ")[1].split()[0] == str(t_test[0])


def test_a_fashion_checkpoint_prepares_photos_its_own_way(tmp_path):
    """The checkpoint says Fashion-MNIST; its recipe (trim, longer side to 28, centre) is used.
    Measured: 500 test items, inverted, enlarged and padded, score within 2-3 points of the
    originals (the round trip through a bilinear enlargement blurs their texture)."""
    import fastnet
    from fastnet.datasets import load_fashion_mnist
    from fastnet.images import prepare
    from fastnet.loading import load_with_info

    folder = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"
    if not (folder / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("full Fashion-MNIST files not found (../shared/data/fashion-mnist)")
    done = run_cli(
        "train",
        "--net",
        "two-layer",
        "--dataset",
        "fashion-mnist",
        "--epochs",
        "3",
        "--data-dir",
        folder,
        "--out",
        tmp_path / "run",
        "--backend",
        "numpy",
        "--quiet",
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    loaded = load_with_info(tmp_path / "run" / "checkpoint.npz", "numpy")
    assert loaded.dataset == "fashion-mnist" and loaded.classes[0] == "T-shirt/top"
    (_, _), (x, t) = load_fashion_mnist(data_dir=folder, progress=False)
    rng = numpy.random.default_rng(0)
    picked = rng.choice(len(x), 500, replace=False)
    paths = [user_style_png(x[i], tmp_path / f"{i}.png", rng) for i in picked]
    images = numpy.stack([prepare(p, loaded.dataset) for p in paths]).reshape(len(picked), -1)
    net = fastnet.load(tmp_path / "run" / "checkpoint.npz", backend="numpy")
    mine = float((net.predict(images).argmax(axis=1) == t[picked]).mean())
    assert abs(mine - net.accuracy(x[picked], t[picked])) <= 0.03
    done = run_cli("predict", tmp_path / "run" / "checkpoint.npz", paths[0], tmp_path=tmp_path)
    assert done.returncode == 0 and done.stdout.strip().split(": ", 1)[1].rsplit(" ", 1)[0] in loaded.classes
