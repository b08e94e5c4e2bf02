"""Test settings: the `test` profile of deploy/dev.py (its own Kafka and PostgreSQL ports),
so the tests never touch a developer's running system."""

from __future__ import annotations

import os

from deploy.dev import PROFILES

for _key, _value in PROFILES["test"].env().items():
    os.environ.setdefault(_key, _value)
os.environ.setdefault("KORTFLYT_PROFILE", "test")
