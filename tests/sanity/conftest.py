"""Fixture for the sanity tier: a fresh copy of the collection per pytest session."""

from pathlib import Path

import pytest

from collection_copy import REPO_ROOT, SANITY_COLLECTION, copy_collection


@pytest.fixture(scope="session")
def sanity_collection() -> Path:
    copy_collection(REPO_ROOT, SANITY_COLLECTION)
    return SANITY_COLLECTION
