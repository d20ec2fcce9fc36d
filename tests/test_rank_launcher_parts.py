"""The pieces of ``fastnet train --ranks N`` that need no MPI: the banner filter, the ranks'
records, the resume command's launcher form, and a missing mpiexec."""

import os
import sys

from fastnet.distributed.hydra_banner import BannerFilter
from fastnet.distributed.rank_records import RECORDS_VAR, RankRecords, record_output, record_said
from fastnet.training.stopping import resume_command

BANNER = (
    b"\n"
    b"===================================================================================\n"
    b"=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES\n"
    b"=   PID 12407 RUNNING AT vm\n"
    b"=   EXIT CODE: 9\n"
    b"=   CLEANING UP REMAINING PROCESSES\n"
    b"=   YOU CAN IGNORE THE BELOW CLEANUP MESSAGES\n"
    b"===================================================================================\n"
    b"YOUR APPLICATION TERMINATED WITH THE EXIT STRING: Killed (signal 9)\n"
    b"This typically refers to a problem with your application.\n"
    b"Please see the FAQ page for debugging suggestions\n"
)


def filtered(text: bytes, size: int) -> tuple[bytes, BannerFilter]:
    banner = BannerFilter()
    out = b"".join(banner.feed(text[i : i + size]) for i in range(0, len(text), size))
    return out + banner.finish(), banner


def test_the_banner_is_held_back_and_everything_else_passes_unchanged_in_any_chunks():
    before = b"epoch 1/50: train loss 2.3\n\rprogress 10%\rprogress 20%\n\nblank line above = kept\n"
    for size in (1, 3, 7, 64, 4096):
        out, banner = filtered(before + BANNER + b"after\n", size)
        assert out == before + b"after\n", size
        assert banner.exit_string == "Killed (signal 9)"


def test_a_partial_line_is_printed_at_once():
    banner = BannerFilter()
    assert banner.feed(b"\rprogress 10%") == b"\rprogress 10%"
    assert banner.feed(b" ====\n") == b" ====\n"
    assert banner.feed(b"==") == b""  # could be the banner's rule: waits for its line
    assert banner.feed(b" not a rule\n") == b"== not a rule\n"


def test_the_records_name_pids_faults_and_the_output(tmp_path, monkeypatch):
    monkeypatch.setenv(RECORDS_VAR, str(tmp_path))
    (tmp_path / "0.pid").write_text("111")
    (tmp_path / "1.pid").write_text("222")
    (tmp_path / "1.fault").write_text("Fatal Python error: Segmentation fault\n\nCurrent thread ...\n")
    (tmp_path / "0.fault").write_text("")
    record_said(0)
    record_output("runs/x")
    records = RankRecords(tmp_path)
    assert records.pids() == {0: 111, 1: 222}
    assert (records.fault(0), records.fault(1)) == (None, "SIGSEGV")
    assert records.said(0) and not records.said(1)
    assert str(records.output()) == "runs/x"


def test_the_resume_command_of_a_supervised_job_is_the_launcher_form():
    from fastnet.training.steps import DataParallelStep

    class Comm:
        size = 2

    step = DataParallelStep(Comm(), "mpi", supervised=True)  # type: ignore[arg-type]
    assert resume_command("a b/c.npz", *step.resume_options, launcher=step.launcher) == (
        "fastnet train --ranks 2 --resume 'a b/c.npz'"
    )
    step = DataParallelStep(Comm(), "nccl", supervised=True)  # type: ignore[arg-type]
    assert resume_command("c.npz", *step.resume_options, launcher=step.launcher) == (
        "fastnet train --ranks 2 --resume c.npz --distributed nccl"
    )


def test_a_missing_mpiexec_is_one_line(tmp_path, monkeypatch, capsys):
    from fastnet.cli.main import main

    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no mpiexec beside it
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(RECORDS_VAR, raising=False)
    for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    code = main(["train", "--ranks", "2", "--dataset", "sample", "--epochs", "1", "--out", "x"])
    said = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and said == [
        "fastnet: error: mpiexec was not found; pip install 'fastnet[mpi]' (mpi4py and the mpich wheel)"
    ]
    assert not os.path.exists(tmp_path / "x")
