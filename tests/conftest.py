"""Shared fixtures for the whole suite."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# CI machines are 2-core and noisy: no deadlines, bounded example counts.
settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
