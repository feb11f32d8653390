"""The HTTP layer llmcache's model-server plugins share (`llmcache_ollama`, `llmcache_openai`).

Neither plugin owns it, so neither imports the other; the core (`llmcache`) never imports it,
so the core imports no HTTP library. A plugin's client is its protocol (request bodies in,
llmcache types out) over the parts here:

- `ModelClient` / `AsyncModelClient`: ``generate``, ``chat`` and their streams, the calls
  every model API answers the same way (a plugin adds its parser, ``embed`` and the rest);
- `Transport` / `AsyncTransport`: at most ``max_connections`` requests in flight, retries
  with backoff inside one time budget, error replies read and mapped, streams that hold
  their connection until closed (each blocking twin is generated from the asyncio one);
- `HTTPClientBase`: the validated settings (`check_settings`, `make_timeout`) and the hooks
  the transport calls, leaving the plugin its status mapping, retry rule and request
  builders (`TransportHooks` lists the hooks);
- the boundary: `map_errors` turns httpx exceptions into `llmcache.backends.errors`,
  `RetryClock` paces retries, `redact` and `scrub` keep credentials out of messages;
- the checks of a request (`refuse_reserved`, `input_texts`) and of a reply's JSON
  (`decode_object`, `int_field`, `str_field`).

>>> from llmcache_http import make_timeout
>>> make_timeout(5)[1]
5.0
"""

from __future__ import annotations

from llmcache_http._async_model_client import AsyncModelClient
from llmcache_http._async_transport import AsyncTransport
from llmcache_http._boundary import (
    RetryClock,
    connection_refused,
    make_timeout,
    map_errors,
    redact,
    scrub,
)
from llmcache_http._checks import (
    check_settings,
    decode_object,
    input_texts,
    int_field,
    refuse_reserved,
    str_field,
)
from llmcache_http._client_base import Call, Clock, HTTPClientBase, TransportHooks
from llmcache_http._sync_model_client import ModelClient
from llmcache_http._sync_transport import Transport

__all__ = [
    "AsyncModelClient",
    "AsyncTransport",
    "Call",
    "Clock",
    "HTTPClientBase",
    "ModelClient",
    "RetryClock",
    "Transport",
    "TransportHooks",
    "check_settings",
    "connection_refused",
    "decode_object",
    "input_texts",
    "int_field",
    "make_timeout",
    "map_errors",
    "redact",
    "refuse_reserved",
    "scrub",
    "str_field",
]
