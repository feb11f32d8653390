"""The public API type-checks as users write it (mypy --strict on `check_types.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api", reason="mypy is a dev dependency")

HERE = Path(__file__).parent


def test_the_public_api_type_checks_as_users_write_it() -> None:
    stdout, stderr, status = api.run(
        [
            "--strict",
            "--warn-unused-ignores",
            "--no-incremental",
            "--cache-dir",
            "/dev/null",
            "--no-error-summary",
            "--show-error-codes",
            str(HERE / "check_types.py"),
        ]
    )
    assert status == 0, stdout + stderr
