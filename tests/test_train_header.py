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


def test_the_evaluation_line_names_the_sample_and_the_full_alternative(tmp_path):
    run = ("train", "--dataset", "sample", "--epochs", "1", "--backend", "numpy", "--quiet")
    sampled = run_cli(*run, "--train-eval", "500", "--out", tmp_path / "a", tmp_path=tmp_path)
    assert sampled.returncode == 0, sampled.stderr
    assert header(sampled, "evaluation after each epoch: ") == (
        "evaluation after each epoch: train on a sample of 500 of 10,000 images "
        "(--train-eval full: all of them), 2,000 test"
    )
    full = run_cli(*run, "--train-eval", "full", "--val-split", "1000", "--out", tmp_path / "b", tmp_path=tmp_path)
    assert full.returncode == 0, full.stderr
    assert header(full, "evaluation after each epoch: ") == (
        "evaluation after each epoch: train on all 9,000 images, 1,000 validation, 2,000 test"
    )


def test_train_eval_is_recorded_and_kept_by_a_resume(tmp_path):
    import json

    run = ("train", "--dataset", "sample", "--backend", "numpy", "--quiet")
    first = run_cli(*run, "--epochs", "1", "--train-eval", "700", "--out", tmp_path / "r", tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    again = run_cli(*run, "--epochs", "2", "--resume", tmp_path / "r" / "checkpoint.npz", tmp_path=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "train on a sample of 700 of 10,000 images" in again.stdout
    history = json.loads((tmp_path / "r" / "history.json").read_text())
    assert history["config"]["train_eval"] == 700


def test_a_bad_train_eval_is_one_line(tmp_path):
    result = run_cli("train", "--dataset", "sample", "--train-eval", "some", "--out", tmp_path / "r", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "--train-eval" in result.stderr and "Traceback" not in result.stderr
