"""A plugin whose import fails, as one with a missing dependency would."""

from __future__ import annotations

raise ImportError("llmcache_test_plugins.broken: this plugin is broken on purpose")
