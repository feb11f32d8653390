"""Backends: clients of model servers, found through the ``llmcache.backends`` entry points."""

from __future__ import annotations

from llmcache.backends.base import AIResponse, AsyncBackend, Backend, EmbedResponse, StreamChunk
from llmcache.backends.errors import (
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    ModelNotFound,
    StreamError,
)

__all__ = [
    "AIResponse",
    "AsyncBackend",
    "Backend",
    "BackendError",
    "BackendTimeout",
    "BackendUnavailable",
    "BadRequest",
    "BadResponse",
    "EmbedResponse",
    "ModelNotFound",
    "StreamChunk",
    "StreamError",
]
