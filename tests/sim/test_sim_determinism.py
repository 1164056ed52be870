"""The simulator replays exactly from its seed."""

from __future__ import annotations

import pytest

from simulations.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ("converge", "--nodes", "20", "--trials", "5", "--loss", "0.1"),
        ("converge", "--nodes", "20", "--trials", "3", "--asynchronous", "--eager"),
        ("scenario", "partition-heal"),
    ],
)
def test_same_seed_same_output(capsys: pytest.CaptureFixture[str], argv: tuple[str, ...]) -> None:
    first = run(capsys, *argv, "--seed", "7")
    assert first == run(capsys, *argv, "--seed", "7")


def test_output_does_not_depend_on_the_number_of_workers(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("converge", "--nodes", "20", "--trials", "4", "--loss", "0.2", "--loss-per", "exchange")
    assert run(capsys, *argv, "--workers", "1") == run(capsys, *argv, "--workers", "2")


def test_another_seed_another_run(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ("converge", "--nodes", "20", "--trials", "3", "--asynchronous")
    assert run(capsys, *argv, "--seed", "1") != run(capsys, *argv, "--seed", "2")


def test_sweep_csv_is_identical(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    outputs = []
    for name in ("a", "b"):
        argv = ["sweep", "--nodes", "10,20", "--trials", "3", "--no-plots",
                "--out", str(tmp_path / name)]
        run(capsys, *argv)
        outputs.append((tmp_path / name / "sweep.csv").read_bytes())
    assert outputs[0] == outputs[1]
