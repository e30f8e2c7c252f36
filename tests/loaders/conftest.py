"""Fixtures of the loader tests."""

from __future__ import annotations

import pytest

from tests.loaders._odd import deadline as _deadline


@pytest.fixture
def deadline():
    """Fail a test that hangs (a named pipe opened for reading) after 30 s instead of hanging the suite."""
    with _deadline(30):
        yield
