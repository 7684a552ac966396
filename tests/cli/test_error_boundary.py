"""The one error boundary (rnntool/cli/__init__.py:main): errors that used to escape as
`internal error: …` or a traceback become one line that says what to do next.

- `--debug` anywhere before `--`;
- a full disk or an exceeded quota (ENOSPC/EDQUOT), wherever the write was;
- memory exhausted by an absurd size (numpy's MemoryError, torch's allocator error);
- absurd numbers on `tokenize train` options, rejected before any work.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import invoke

INT32_MAX = 2**31 - 1


def _dev_full() -> bool:
    import stat

    try:
        return stat.S_ISCHR(os.stat("/dev/full").st_mode)
    except OSError:
        return False


needs_dev_full = pytest.mark.skipif(not _dev_full(), reason="needs the /dev/full device (Linux)")


@pytest.fixture
def short_lines(tmp_path) -> Path:
    p = tmp_path / "short.txt"
    p.write_text("".join(f"ab {i % 7}\n" for i in range(200)), encoding="utf-8")
    return p


def one_error_line(stderr: str) -> str:
    """The single `rnntool: error: …` line stderr must be (no traceback, nothing else)."""
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("rnntool: error: "), stderr
    assert "internal error" not in lines[0] and "Traceback" not in stderr, stderr
    return lines[0]


# -- --debug anywhere ----------------------------------------------------------------------------
def test_debug_after_the_subcommand_is_accepted():
    r = invoke("models", "list", "--debug")
    assert r.exit_code == 0, r.output
    assert "No such option" not in r.output and "Traceback" not in r.output


def test_debug_after_the_subcommand_shows_the_traceback_of_an_error():
    r = invoke("models", "show", "no-such-model", "--debug")
    assert r.exit_code == 1, r.output
    assert "Traceback" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("rnntool: error: no model 'no-such-model'"), r.stderr


def test_debug_before_the_subcommand_still_works():
    r = invoke("--debug", "models", "list")
    assert r.exit_code == 0, r.output
    r = invoke("--debug", "models", "show", "no-such-model")
    assert r.exit_code == 1 and "Traceback" in r.stderr, r.output


def test_rnntool_debug_environment_variable_still_works():
    r = invoke("models", "show", "no-such-model", env={"RNNTOOL_DEBUG": "1"})
    assert r.exit_code == 1 and "Traceback" in r.stderr, r.output


def test_debug_after_double_dash_is_an_argument(corpus, tmp_path):
    """After `--` everything is an argument: `--debug` there is a file name, not the option."""
    model = tmp_path / "spm.model"
    assert invoke("tokenize", "train", corpus, "-o", model, "--vocab-size", "300", "-q").exit_code == 0
    r = invoke("tokenize", "encode", "-m", model, "--", "--debug")
    assert r.exit_code == 1, r.output
    assert "--debug" in one_error_line(r.stderr)


# -- a full disk --------------------------------------------------------------------------------
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_while_publishing_is_one_line(corpus, monkeypatch, code):
    from rnntool.registry.store import Registry

    where = "/srv/registry/.staging/abc/tokenizer.model"

    def full(self, *a, **kw):
        raise OSError(code, os.strerror(code), where)

    monkeypatch.setattr(Registry, "publish", full)
    r = invoke("tokenize", "train", corpus, "--name", "spm", "--vocab-size", "300", "-q")
    assert r.exit_code == 1, r.output
    line = one_error_line(r.stderr)
    assert line.startswith(f"rnntool: error: no space left on device writing {where}"), line
    assert "nothing was published" in line
    assert line.endswith("free some space (or point --registry/--run-dir elsewhere) and run again"), line


def test_disk_full_without_a_file_name_is_one_line(corpus, monkeypatch):
    from rnntool.registry.store import Registry

    def full(self, *a, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Registry, "publish", full)
    r = invoke("tokenize", "train", corpus, "--name", "spm", "--vocab-size", "300", "-q")
    assert r.exit_code == 1, r.output
    line = one_error_line(r.stderr)
    assert line.startswith("rnntool: error: no space left on device"), line
    assert "nothing was published; free some space" in line


def test_disk_full_inside_a_library_error_is_one_line(corpus, monkeypatch):
    """safetensors reports a full disk as its own exception type, naming only `os error 28`."""
    from rnntool.registry.store import Registry

    class SafetensorError(Exception):
        pass

    def full(self, *a, **kw):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(Registry, "publish", full)
    r = invoke("tokenize", "train", corpus, "--name", "spm", "--vocab-size", "300", "-q")
    assert r.exit_code == 1, r.output
    assert one_error_line(r.stderr).startswith("rnntool: error: no space left on device"), r.stderr


def test_disk_full_writing_the_tokenizer_names_the_file(corpus, monkeypatch, tmp_path):
    import rnntool.tokenizers.training as tt

    def full(dest, data):
        raise OSError(errno.ENOSPC, "No space left on device")  # a write() failure names no file

    monkeypatch.setattr(tt, "atomic_write_bytes", full)
    out = tmp_path / "spm.model"
    r = invoke("tokenize", "train", corpus, "-o", out, "--vocab-size", "300", "-q")
    assert r.exit_code == 1, r.output
    line = one_error_line(r.stderr)
    assert line.startswith(f"rnntool: error: no space left on device writing {out}"), line
    assert not out.exists()


@needs_dev_full
def test_log_file_on_a_full_disk_is_one_line(corpus):
    """--log-file on a full disk: the error report itself must not fail with a traceback."""
    r = invoke("train", "lm", corpus, "--name", "lm", "--max-steps", "1", "--log-file", "/dev/full")
    assert r.exit_code == 1, r.output
    assert one_error_line(r.stderr).startswith("rnntool: error: no space left on device"), r.stderr


@needs_dev_full
def test_stdout_on_a_full_disk_is_one_line_and_exit_1(corpus, tmp_path):
    model = tmp_path / "spm.model"
    assert invoke("tokenize", "train", corpus, "-o", model, "--vocab-size", "300", "-q").exit_code == 0
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "rnntool", "tokenize", "encode", "-m", str(model), str(corpus)],
                           stdout=full, stderr=subprocess.PIPE, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert one_error_line(r.stderr).startswith("rnntool: error: no space left on device"), r.stderr


def test_disk_full_error_class_builds_its_message():
    from rnntool.errors import DiskFull, RnnToolError

    e = DiskFull.from_oserror(OSError(errno.ENOSPC, "No space left on device", "/a/b"))
    assert isinstance(e, RnnToolError) and e.exit_code == 1
    assert str(e).startswith("no space left on device writing /a/b")
    assert "nothing was published" in str(e)
    e = DiskFull.from_oserror(OSError(errno.EDQUOT, "Disk quota exceeded"), "/x/ckpt", published="news@4")
    assert str(e).startswith("no space left on device writing /x/ckpt")
    assert "news@4 was published" in str(e) and "nothing was published" not in str(e)
    assert DiskFull.matches(OSError(errno.ENOSPC, "x")) and not DiskFull.matches(OSError(errno.EACCES, "x"))


# -- memory exhausted ---------------------------------------------------------------------------
def test_exhausted_memory_is_out_of_memory_not_internal(tmp_path, monkeypatch):
    """(A MemoryError staged by a stand-in: a real 10^12-sample bootstrap could meet the OOM killer.)"""
    def no_memory(*a, **kw):
        raise MemoryError()

    monkeypatch.setattr("rnntool.kinds.translation.bleu.paired_bootstrap", no_memory)
    ref, hyp = tmp_path / "ref.txt", tmp_path / "hyp.txt"
    ref.write_text("the cat sat on the mat\na dog\n", encoding="utf-8")
    hyp.write_text("the cat sat on a mat\na dog\n", encoding="utf-8")
    r = invoke("evaluate", "bleu", "--ref", ref, hyp, "--paired-bootstrap", hyp, "--samples", "1000", "-q")
    assert r.exit_code == 1, r.output
    line = one_error_line(r.stderr)
    assert line.startswith("rnntool: error: out of memory"), line


def test_torch_allocator_failure_is_out_of_memory(monkeypatch):
    from rnntool.registry.store import Registry

    def oom(*a, **kw):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 4000000000000 bytes. Error code 12 (Cannot allocate memory)")

    monkeypatch.setattr(Registry, "open", oom)
    r = invoke("models", "list")
    assert r.exit_code == 1, r.output
    line = one_error_line(r.stderr)
    assert line.startswith("rnntool: error: out of memory"), line
    assert "3.6 TiB" in line, line


# -- absurd numbers on tokenize train -----------------------------------------------------------
def test_absurd_vocab_size_is_a_usage_error_before_any_work(corpus, registry):
    r = invoke("tokenize", "train", corpus, "--name", "spm", "--vocab-size", "1000000000000")
    assert r.exit_code == 2, r.output
    line = one_error_line(r.stderr)
    assert "--vocab-size 1000000000000" in line and str(INT32_MAX) in line, line
    assert "training a" not in r.stderr  # nothing started
    assert not (registry / "models" / "spm").exists()


def test_absurd_vocab_size_for_train_lm_is_a_usage_error(corpus):
    r = invoke("train", "lm", corpus, "--name", "lm", "--vocab-size", "1000000000000", "--max-steps", "1")
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.stderr and "internal error" not in r.stderr, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("rnntool: error: ") and "--vocab-size" in line, line


@pytest.mark.parametrize("option,value,bound", [
    ("--max-line-bytes", "3000000000", "1073741824"),
    ("--max-line-bytes", "1073741825", "1073741824"),
    ("--threads", "1000000000000", "1024"),
    ("--threads", "2000", "1024"),
    ("--seed", "-1", "4294967295"),
    ("--seed", "1000000000000", "4294967295"),
])
def test_absurd_tokenize_train_numbers_are_usage_errors(corpus, tmp_path, option, value, bound):
    r = invoke("tokenize", "train", corpus, "-o", tmp_path / "spm.model", "--vocab-size", "300", option, value)
    assert r.exit_code == 2, r.output
    line = one_error_line(r.stderr)
    assert f"{option} {value}" in line and bound in line, line
    assert "training a" not in r.stderr


def test_largest_accepted_values_still_train(corpus, tmp_path):
    """The bounds are sentencepiece's own: its largest values train (the seed is an unsigned 32-bit int)."""
    r = invoke("tokenize", "train", corpus, "-o", tmp_path / "spm.model", "--vocab-size", "300",
               "--seed", "4294967295", "--threads", "1", "--max-line-bytes", "1073741824", "-q")
    assert r.exit_code == 0, r.output


def test_tiny_max_line_bytes_trains_on_the_lines_that_fit(short_lines, tmp_path):
    """sentencepiece wants its maximum sentence length >= 10; rnntool filters lines itself."""
    r = invoke("tokenize", "train", short_lines, "-o", tmp_path / "spm.model", "--vocab-size", "270",
               "--max-line-bytes", "5", "-q")
    assert r.exit_code == 0, r.output


def test_settings_can_be_checked_before_any_input_is_read():
    """Commands check first (``check_settings(**train_kw)``), then read, spool or fingerprint inputs."""
    from rnntool.errors import ConfigError
    from rnntool.tokenizers.training import check_settings, check_vocab_size

    check_settings(vocab_size=8000, threads=2, seed=7, on_log=print, display_names=["x"])  # extra keywords ignored
    with pytest.raises(ConfigError, match="--vocab-size 1000000000000"):
        check_settings(vocab_size=10**12, on_log=print)
    with pytest.raises(ConfigError, match="--vocab-size"):
        check_vocab_size(2**31)
