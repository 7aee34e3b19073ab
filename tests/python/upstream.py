"""Helpers for the SDK tests that compare the gateway with the emulator behind it: the
emulator's own answers (asked for directly with the upstream key), image downloads, float32
rounding, and the ledger row of a response, read with psql from the test database."""

import json
import re
import struct
import subprocess
import time
import urllib.request

from conftest import UPSTREAM_KEY

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LEDGER_WAIT_SECS = 5.0


def upstream_post(emulator, path, body):
    """POSTs `body` to the emulator (`emulator` is its /api/paas/v4 base) with the upstream key."""
    request = urllib.request.Request(
        emulator + path, method="POST", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {UPSTREAM_KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def upstream_embeddings(emulator, texts, model="embedding-3", dimensions=None):
    """The emulator's vectors for `texts` (in order) and its usage, at most 64 texts a call."""
    assert len(texts) <= 64
    body = {"model": model, "input": texts}
    if dimensions is not None:
        body["dimensions"] = dimensions
    answer = upstream_post(emulator, "/embeddings", body)
    vectors = [item["embedding"] for item in sorted(answer["data"], key=lambda d: d["index"])]
    return vectors, answer["usage"]


def f32(values):
    """Each value rounded to the nearest float32, as a Python float."""
    return [struct.unpack("<f", struct.pack("<f", v))[0] for v in values]


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        return response.read()


def ledger_row(database_url, request_id):
    """The `usage_events` row whose request_id is `request_id`, as a dict, waiting for the
    writer (it flushes every 200 ms); None when it has not come within LEDGER_WAIT_SECS."""
    assert re.fullmatch(r"[A-Za-z0-9._:-]+", request_id), request_id
    query = f"SELECT row_to_json(u) FROM usage_events u WHERE request_id = '{request_id}'"
    deadline = time.monotonic() + LEDGER_WAIT_SECS
    while True:
        result = subprocess.run(
            ["psql", database_url, "-Atqc", query], capture_output=True, text=True, timeout=30, check=True
        )
        rows = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert len(rows) <= 1, rows
        if rows or time.monotonic() > deadline:
            return rows[0] if rows else None
        time.sleep(0.1)
