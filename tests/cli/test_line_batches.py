"""Line-in/line-out commands answer each line at once when a person types (stdin is a terminal)."""

from __future__ import annotations

import pytest

from rnntool.cli import options
from rnntool.errors import UsageError


def test_batch_size_is_one_only_for_a_person_typing(monkeypatch):
    monkeypatch.setattr(options, "stdin_is_tty", lambda: True)
    assert options.line_batch_size(None, None, 32) == 1 and options.line_batch_size(None, "-", 32) == 1
    assert options.line_batch_size(None, "big.txt", 32) == 32
    assert options.line_batch_size(8, None, 32) == 8
    monkeypatch.setattr(options, "stdin_is_tty", lambda: False)
    assert options.line_batch_size(None, None, 32) == 32
    with pytest.raises(UsageError, match="--batch-size must be at least 1"):
        options.line_batch_size(0, None, 32)
