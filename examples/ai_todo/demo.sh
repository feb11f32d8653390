#!/usr/bin/env bash
# `make demo`: the ai_todo app on a real model, cold then warm.
#
# Uses the Ollama at OLLAMA_HOST when one answers and has the model (AI_TODO_MODEL, default
# smollm2); otherwise starts the project's test server (llmcache_testserver) on SmolLM2-135M
# (llama.cpp) and stops it on exit. Data goes to a fresh temporary AI_TODO_HOME, so the
# first benchmark is truly cold; the second runs in a new process, warm from the disk cache.
#
# `make demo-offline` (DEMO_ENGINE=demo): the same steps on the bundled server's demo engine,
# which answers by rules, no model involved; each answer is paced to 200 ms (--latency-ms),
# what a fast model costs, so the cold run still has model time for the cache to save.
set -euo pipefail

cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
PY="$BIN/python"
AI_TODO="$BIN/ai-todo"
MODEL=${AI_TODO_MODEL:-smollm2}
COUNT=${DEMO_COUNT:-20}
ENGINE=${DEMO_ENGINE:-llama}
case "$ENGINE" in
    llama) SERVER_ARGS=(--engine llama) ;;
    demo) SERVER_ARGS=(--engine demo --latency-ms 200) ;;
    *) echo "DEMO_ENGINE must be llama or demo, got '$ENGINE'" >&2; exit 2 ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/ai-todo-demo.XXXXXX")
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        echo "Stopped the bundled server."
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 0 when an Ollama answers at $1 and lists the model; 1 when none answers; 2 when it answers
# without the model.
probe() {
    "$PY" - "$1" "$MODEL" <<'EOF'
import sys

import httpx

from llmcache_ollama._boundary import resolve_host

url, model = resolve_host(sys.argv[1]), sys.argv[2]
try:
    httpx.get(url + "/", timeout=2.0).raise_for_status()
    names = [m["name"] for m in httpx.get(url + "/api/tags", timeout=5.0).json()["models"]]
except (httpx.HTTPError, ValueError, KeyError, TypeError):
    sys.exit(1)
wanted = model if ":" in model else model + ":latest"
sys.exit(0 if wanted in names else 2)
EOF
}

host=${OLLAMA_HOST:-127.0.0.1:11434}
status=0
if [ "$ENGINE" = demo ]; then
    status=3  # offline: never a real server, whatever answers at OLLAMA_HOST
    echo "Starting the bundled server on the demo engine (tasks by rules, no model; each" \
         "answer paced to 200 ms)."
else
    probe "$host" || status=$?
fi
if [ "$status" -eq 0 ]; then
    echo "Using the Ollama at $host (model $MODEL)."
else
    if [ "$status" -eq 2 ]; then
        echo "The Ollama at $host has no model '$MODEL'; using the bundled local server."
    elif [ "$status" -eq 1 ]; then
        echo "No Ollama answers at $host; starting the bundled server on SmolLM2-135M (llama.cpp)."
    fi
    "$PY" -m llmcache_testserver "${SERVER_ARGS[@]}" --port 0 >"$work/server.url" \
        2>"$work/server.log" &
    server_pid=$!
    for _ in $(seq 1 600); do
        if [ -s "$work/server.url" ]; then break; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then
            echo "The bundled server did not start:" >&2
            cat "$work/server.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    host=$(head -n 1 "$work/server.url")
    if [ -z "$host" ]; then
        echo "The bundled server did not print its address in 60 s." >&2
        exit 1
    fi
    echo "Bundled server at $host"
    MODEL=smollm2
fi

export OLLAMA_HOST="$host" AI_TODO_HOME="$work/home" AI_TODO_MODEL="$MODEL"
export AI_TODO_BACKEND=${AI_TODO_BACKEND:-ollama}

echo
echo "== 1. Cold: $COUNT tasks, empty caches (the model answers each distinct note once) =="
"$AI_TODO" benchmark --count "$COUNT" --report "$work/cold.json"
echo
echo "== 2. Warm: the same $COUNT tasks in a new process (answers from the disk cache) =="
"$AI_TODO" benchmark --count "$COUNT" --report "$work/warm.json"

echo
echo "== 3. The five notes as real tasks (from the cache), and a search by meaning =="
for note in "buy groceries tomorrow" "finish report by Friday" "call mom in the afternoon" \
            "schedule dentist appointment" "review pull request urgent"; do
    "$AI_TODO" add "$note"
done
"$AI_TODO" list
"$AI_TODO" search "food shopping"

echo
echo "== 4. Statistics, read by a fresh process from what the earlier ones saved =="
"$AI_TODO" stats

echo
"$PY" - "$work/cold.json" "$work/warm.json" "$ENGINE" <<'EOF'
import json
import sys

cold, warm = (json.load(open(path)) for path in sys.argv[1:3])
engine = sys.argv[3]
ratio = cold["total_s"] / warm["total_s"] if warm["total_s"] else float("inf")
print(f"Cold: {cold['total_s']:.2f} s for {cold['created']} tasks "
      f"({cold['model_answers']} answered by the model, {cold['cache_hits']} from the cache; "
      f"{cold['needs_review']} without a valid answer, kept for review)")
print(f"Warm: {warm['total_s'] * 1000:.1f} ms for {warm['created']} tasks "
      f"({warm['cache_hits']} from the cache)")
if engine == "demo":
    verdict = "demo engine: answers paced to 200 ms; `make demo` measures a real model"
else:
    verdict = "target >= 50x met" if ratio >= 50 else "below the 50x target"
print(f"Speedup: warm is {ratio:,.0f}x faster than cold ({verdict})")
EOF
