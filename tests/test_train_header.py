"""The header of ``fastnet train``: the sizes the run really uses and its schedule, in words."""

from fastnet_cli import run_cli


def header(result, prefix):
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(prefix)]
    return line


def test_the_data_line_gives_the_train_validation_and_test_sizes_the_run_uses(tmp_path):
    result = run_cli(
        *("train", "--dataset", "sample", "--limit", "1000", "--val-split", "100", "--epochs", "1"),
        *("--lr-schedule", "step", "--warmup-epochs", "0.5", "--backend", "numpy", "--quiet", "--out", tmp_path / "r"),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert header(result, "data: ") == (
        "data: mnist-sample from embedded sample (900 train, 100 validation, 2,000 test; "
        "--limit kept the first 1,000 of 10,000 training images)"
    )
    assert header(result, "net: ") == (
        "net: two-layer (39,760 parameters), sgd lr 0.1, batch 100, 1 epoch, float32; "
        "learning rate: step schedule from 0.1, x0.1 every 1 update over 1 epoch, after 4 updates of linear warm-up"
    )


def test_without_limit_or_split_the_data_line_is_the_files_sizes(tmp_path):
    result = run_cli(
        *("train", "--dataset", "sample", "--epochs", "2", "--backend", "numpy", "--quiet", "--out", tmp_path / "r"),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert header(result, "data: ") == "data: mnist-sample from embedded sample (10,000 train, 2,000 test)"
    assert header(result, "net: ").endswith(", batch 100, 2 epochs, float32")  # no schedule: nothing said
