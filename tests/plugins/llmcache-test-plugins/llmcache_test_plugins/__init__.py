"""Test-only llmcache backend plugins: `good` works, `broken` fails to import."""
