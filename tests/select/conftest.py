"""Fixtures of the select tests."""

from __future__ import annotations

import pytest

from tests.select._data import demo_like


@pytest.fixture(scope="session")
def demo_tables():
    """(catalog, quality, labels) shaped like the demo at seed 0, scale 0.3 (train 686/314/455/227/52)."""
    return demo_like(seed=0, scale=0.3)


@pytest.fixture(scope="session")
def kl_sample(shared_data):
    """The catalog of ../shared/data/knee_kl_sample (official train and test, 40 per grade each)."""
    from curate.loaders import load

    folder = shared_data / "knee_kl_sample"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return load("oai-kl", folder).catalog
