"""`AsyncModelClient`: the calls every model-server plugin answers the same way.

``generate``, ``chat`` and their streams (stated once, by `AsyncBackend`, which hands their
arguments to the hooks) check what the caller passed and build the plugin's request
(`HTTPClientBase._call`), send it (`AsyncTransport`) and hand the reply to the plugin's parser
(its `Wire`'s ``to_response``); a plugin supplies ``_stream`` (a streamed reply to chunks),
and adds what its API has besides (``embed``, model lists).

Both faces come from one source: the asyncio client is written by hand and its blocking
twin generated from it by ``scripts/unasync.py``.
"""

from __future__ import annotations

from typing import Any

from llmcache.backends._async_backend import AsyncBackend
from llmcache.backends.base import AIResponse
from llmcache_http._async_transport import AsyncTransport
from llmcache_http._client_base import CallT, HTTPClientBase

__all__ = ["AsyncModelClient"]


class AsyncModelClient(HTTPClientBase[CallT], AsyncTransport, AsyncBackend):
    """``generate``, ``generate_stream``, ``chat`` and ``chat_stream`` (`AsyncBackend`'s)
    over the plugin's protocol (see the module docstring); the plugin's class says what its
    API does with each argument."""

    def _response(self, call: CallT, reply: dict[str, Any], wall_ms: float) -> AIResponse:
        """The answer in `reply`, the JSON object the server sent for `call`."""
        return self._wire.to_response(call, reply, wall_ms)

    async def _answer(self, call: CallT) -> AIResponse:
        reply, wall_ms = await self._json("POST", call.path, call.body, call.model)
        return self._response(call, reply, wall_ms)
