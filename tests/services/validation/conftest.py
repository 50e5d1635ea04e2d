"""Fixtures of the validation tests: a state's online permit lookup on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.helpers.permit_registry import permit_registry


@pytest.fixture
def registry_server() -> Iterator[str]:
    """The lookup URL template of a running tests.helpers.permit_registry server."""
    with permit_registry() as url:
        yield url
