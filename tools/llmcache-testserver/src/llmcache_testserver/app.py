"""`OllamaServer`: an Ollama-compatible server in a background thread, for tests,
benchmarks and demos."""

from __future__ import annotations

import threading
from types import TracebackType

from llmcache_testserver.anthropic_api import AnthropicAPI
from llmcache_testserver.api import VERSION, OllamaAPI
from llmcache_testserver.engines import EchoEngine, Engine
from llmcache_testserver.handler import OllamaHTTPServer
from llmcache_testserver.openai_api import OpenAIAPI
from llmcache_testserver.state import CallCounter, Faults

__all__ = ["OllamaServer"]


class OllamaServer:
    """Serves Ollama's HTTP API from `engine` (an `EchoEngine` by default), OpenAI's
    under ``/v1`` (`openai_url`) and Anthropic's ``POST /v1/messages`` (base URL `url`, as
    the anthropic SDK takes it) from the same engine.

    ``port=0`` picks a free port; `url` is known once started. ``calls`` counts requests per
    endpoint (``openai.chat``, ``openai.embeddings``, ``openai.models`` for the OpenAI
    routes, ``anthropic.messages``); change ``faults`` (a `Faults`) to inject failures
    while it runs, and ``openai`` (an `OpenAIAPI`) or ``anthropic`` (an `AnthropicAPI`) to
    require an API key or answer 429s.

    >>> import httpx
    >>> with OllamaServer(EchoEngine(latency_ms=1)) as server:
    ...     httpx.get(f"{server.url}/api/version").json() == {"version": VERSION}
    ...     server.calls["version"]
    True
    1
    """

    def __init__(
        self,
        engine: Engine | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Faults | None = None,
        version: str = VERSION,
    ) -> None:
        self.engine: Engine = engine if engine is not None else EchoEngine()
        self.faults = faults if faults is not None else Faults()
        self.calls = CallCounter()
        self.api = OllamaAPI(self.engine, faults=self.faults, calls=self.calls, version=version)
        self.openai = OpenAIAPI(self.engine, faults=self.faults, calls=self.calls)
        self.anthropic = AnthropicAPI(self.engine, faults=self.faults, calls=self.calls)
        self._address = (host, port)
        self._httpd: OllamaHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> OllamaServer:
        """Bind and serve in a daemon thread. Returns self."""
        if self._httpd is not None:
            raise RuntimeError("server already started")
        httpd = OllamaHTTPServer(self._address, self.api, self.openai, self.anthropic)
        # A short poll interval keeps stop() fast; the loop costs nothing measurable.
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"ollama-server:{httpd.server_port}",
            daemon=True,
        )
        thread.start()
        self._httpd, self._thread = httpd, thread
        return self

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port)."""
        if self._httpd is None:
            raise RuntimeError("server not started; use start() or `with`")
        return self._httpd.server_name, self._httpd.server_port

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    @property
    def openai_url(self) -> str:
        """The base URL of the OpenAI-compatible API, e.g. ``http://127.0.0.1:54321/v1``."""
        return f"{self.url}/v1"

    def stop(self) -> None:
        """Stop serving, close open connections and the listening socket. Idempotent."""
        httpd, thread = self._httpd, self._thread
        self._httpd = self._thread = None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> OllamaServer:
        # `with OllamaServer(...).start() as server:` is fine too.
        return self if self._httpd is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._httpd is not None else "not started"
        return f"OllamaServer({where}, engine={type(self.engine).__name__})"
