#!/usr/bin/env bash
# Does llama.cpp itself load Moxi's q8_0 GGUF and write with it? Installs llama-cpp-python into a throwaway
# venv (pip compiles llama.cpp from source: 10+ minutes on 2 cores), loads the file, generates 32 tokens.
#
#   bash benchmarks/llama_cpp_check.sh [GGUF_FILE]    (default: data/models/gguf_model/moxi-q8_0.gguf)
#
# Prints exactly one result line:
#   llama_cpp_check: OK tokens=<n> tok_s=<x> text=<first 60 characters, JSON-quoted>
#   llama_cpp_check: SKIPPED <why>      (no file, no python3, or the install failed; exit 0)
#   llama_cpp_check: FAILED <why>       (llama.cpp rejected the file or wrote nothing; exit 1)
# The install log is kept in $VENV_DIR/install.log; the venv is removed at exit unless KEEP_VENV=1.
set -uo pipefail

GGUF_FILE="${1:-data/models/gguf_model/moxi-q8_0.gguf}"
VENV_DIR="${VENV_DIR:-$(mktemp -d -t moxi-llama-cpp.XXXXXX)}"
PYTHON="${PYTHON:-python3}"
N_TOKENS=32

skip() { echo "llama_cpp_check: SKIPPED $*"; exit 0; }
cleanup() { [ "${KEEP_VENV:-0}" = 1 ] || rm -rf "$VENV_DIR"; }
trap cleanup EXIT

[ -f "$GGUF_FILE" ] || skip "no GGUF file at $GGUF_FILE (materialize gguf_model or run \`moxi export\` first)"
command -v "$PYTHON" >/dev/null 2>&1 || skip "no $PYTHON on PATH"
"$PYTHON" -m venv "$VENV_DIR" >/dev/null 2>&1 || skip "could not create a venv in $VENV_DIR ($PYTHON -m venv failed)"
if ! "$VENV_DIR/bin/pip" install --quiet llama-cpp-python >"$VENV_DIR/install.log" 2>&1; then
    KEEP_VENV=1
    skip "pip install llama-cpp-python failed (needs a C/C++ compiler and cmake; log: $VENV_DIR/install.log)"
fi

"$VENV_DIR/bin/python" - "$GGUF_FILE" "$N_TOKENS" <<'PY'
import json
import sys
import time

path, n_tokens = sys.argv[1], int(sys.argv[2])
try:
    from llama_cpp import Llama

    llm = Llama(model_path=path, n_ctx=512, verbose=False)
    messages = [{"role": "user", "content": "Write the About section of a README for a CLI tool that renames files."}]
    started = time.perf_counter()
    out = llm.create_chat_completion(messages=messages, max_tokens=n_tokens, temperature=0.0)
    seconds = time.perf_counter() - started
except Exception as error:  # noqa: BLE001  any llama.cpp refusal is the result we report
    print(f"llama_cpp_check: FAILED {type(error).__name__}: {str(error)[:200]}")
    sys.exit(1)
text = out["choices"][0]["message"]["content"] or ""
tokens = out["usage"]["completion_tokens"]
if tokens == 0 or not text.strip():
    print(f"llama_cpp_check: FAILED llama.cpp loaded {path} but wrote nothing")
    sys.exit(1)
print(f"llama_cpp_check: OK tokens={tokens} tok_s={tokens / seconds:.1f} text={json.dumps(text[:60])}")
PY
