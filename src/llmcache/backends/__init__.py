"""Backends: clients of model servers, found through the ``llmcache.backends`` entry points."""

from __future__ import annotations

from llmcache.backends.base import AIResponse, AsyncBackend, Backend, EmbedResponse, StreamChunk
from llmcache.backends.errors import (
    AuthenticationError,
    BackendError,
    BackendTimeout,
    BackendUnavailable,
    BadRequest,
    BadResponse,
    ModelNotFound,
    StreamError,
)
from llmcache.backends.mock import AsyncMockBackend, MockBackend, MockCall
from llmcache.backends.registry import (
    BackendConflict,
    BackendInfo,
    BackendLoadError,
    BackendNotFound,
    get_backend,
    list_backends,
    load_backend,
    load_backends,
    refresh,
    register_backend,
    unregister_backend,
)

__all__ = [
    "AIResponse",
    "AsyncBackend",
    "AsyncMockBackend",
    "AuthenticationError",
    "Backend",
    "BackendConflict",
    "BackendError",
    "BackendInfo",
    "BackendLoadError",
    "BackendNotFound",
    "BackendTimeout",
    "BackendUnavailable",
    "BadRequest",
    "BadResponse",
    "EmbedResponse",
    "MockBackend",
    "MockCall",
    "ModelNotFound",
    "StreamChunk",
    "StreamError",
    "get_backend",
    "list_backends",
    "load_backend",
    "load_backends",
    "refresh",
    "register_backend",
    "unregister_backend",
]
