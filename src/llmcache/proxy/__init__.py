"""``llmcache proxy``: a caching reverse proxy for the OpenAI-, Anthropic- and Ollama-style
APIs (the ``proxy`` extra: ``pip install 'llmcache[proxy]'``).

A client in any language points its base URL at the proxy; the proxy forwards every request
to the upstream through one pooled `httpx.AsyncClient` whose transport is llmcache's
caching transport, so the proxy is one more door on the same cache path as
`llmcache.integrations.httpx` (same keys, same policy, same ``x-llmcache`` headers and
``x-llmcache-*`` controls, one upstream call for concurrent identical requests)::

    llmcache proxy --upstream http://127.0.0.1:11434 --port 8787 --path ./cache
    # OpenAI SDK:    OpenAI(base_url="http://127.0.0.1:8787/v1", api_key=...)
    # Anthropic SDK: Anthropic(base_url="http://127.0.0.1:8787", api_key=...)
    # Ollama SDK:    ollama.Client(host="http://127.0.0.1:8787")

``/healthz`` answers ``{"status":"ok"}``; ``/metrics`` the counts in the Prometheus text
format (`llmcache.proxy._metrics`). Streams pass through as they arrive. A request body over
``--max-body`` bytes gets a 413; an upstream that cannot be reached a 502 (a 504 when it
times out) saying so; an upstream error (429, 500, ...) is passed on as it came; none of
them is stored. Credentials go upstream untouched and are never logged or stored (entries
are scoped by a keyed hash of them, so two API keys never share answers).

`create_app` builds the ASGI app (for another server, or for tests), `serve` runs it on
uvicorn until SIGTERM; `ProxyConfig` holds the settings of both.
"""

from __future__ import annotations

try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        f"llmcache.proxy needs the 'proxy' extra ({exc.name} is not installed):"
        " pip install 'llmcache[proxy]'"
    ) from exc

from llmcache.proxy._app import DEFAULT_MAX_BODY
from llmcache.proxy._metrics import ProxyMetrics
from llmcache.proxy._serve import DEFAULT_PORT, ProxyConfig, create_app, serve

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_PORT", "ProxyConfig", "ProxyMetrics", "create_app", "serve"]
