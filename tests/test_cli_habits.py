"""CLI habits: progress bars on stderr (also under --json), --quiet, exit codes 1 vs 2."""

from __future__ import annotations

import errno
import json
import os

import pytest

from medviz.cli import build_parser, main
from medviz.cli_support import EXIT_BAD_INPUT, EXIT_RUNTIME, exit_code_for
from medviz.errors import DataError, ModelError


def test_bad_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--epochs", "many", "--out", "x"])
    assert exc.value.code == EXIT_BAD_INPUT
    assert capsys.readouterr().err.startswith("error:")


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_storage_failure_exits_1_with_one_error_line(capsys, monkeypatch):
    monkeypatch.setattr("medviz.data.load_dataset", _disk_full)
    assert main(["inspect", "--data", "synthetic-microcalc"]) == EXIT_RUNTIME
    err = capsys.readouterr().err
    assert err.startswith("error:") and "No space left on device" in err
    assert "Traceback" not in err


def test_unexpected_failure_exits_1_without_traceback(capsys, monkeypatch):
    def bug(*args, **kwargs):
        raise RuntimeError("something broke")

    monkeypatch.setattr("medviz.data.load_dataset", bug)
    assert main(["inspect", "--data", "synthetic-microcalc"]) == EXIT_RUNTIME
    err = capsys.readouterr().err
    assert "RuntimeError: something broke" in err and "--verbose" in err and "Traceback" not in err


def test_exit_code_classification():
    wrapped = ModelError("could not save the model")
    wrapped.__context__ = OSError(errno.EROFS, "Read-only file system")
    assert exit_code_for(wrapped) == EXIT_RUNTIME
    unreadable = DataError("x.png is not an image")
    unreadable.__context__ = OSError("cannot identify image file")  # PIL: no errno
    assert exit_code_for(unreadable) == EXIT_BAD_INPUT
    assert exit_code_for(FileNotFoundError(errno.ENOENT, "No such file")) == EXIT_BAD_INPUT
    assert exit_code_for(PermissionError(errno.EACCES, "denied")) == EXIT_RUNTIME


def test_help_documents_the_exit_codes():
    text = build_parser().format_help()
    assert "exit codes:" in text and "1  runtime failure" in text and "2  bad input" in text


def test_progress_on_stderr_json_on_stdout_and_quiet(capsys, tiny_model_dir):
    argv = ["evaluate", "--model", str(tiny_model_dir), "--data", "synthetic-microcalc",
            "--limit-per-class", "10", "--bootstrap", "20", "--json"]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["n"] > 0, "stdout is exactly one JSON document"
    assert "evaluate:" in err and "2/2" in err, "the progress bar is on stderr"
    assert main(["--quiet", *argv]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["n"] > 0 and "evaluate:" not in err
    assert main([*argv, "--quiet"]) == 0  # after the command too
    assert "evaluate:" not in capsys.readouterr().err
