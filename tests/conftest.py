"""Test settings: the `test` profile of deploy.dev (its own Kafka and PostgreSQL ports),
so the tests never touch a developer's running system."""

from __future__ import annotations

import os

import pytest

from deploy.dev import command_keys_up, test_profile

for _key, _value in test_profile().env().items():
    os.environ.setdefault(_key, _value)
# support's command key pair: the stages under test trust only commands signed with it.
command_keys_up(test_profile())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tier of a test is its directory: tests/integration and tests/e2e get their marker."""
    for item in items:
        path = str(item.path)
        if "/tests/integration/" in path:
            item.add_marker(pytest.mark.integration)
        elif "/tests/e2e/" in path:
            item.add_marker(pytest.mark.e2e)
