"""What the SDK's own usage numbers say must match the ledger, over HTTP and on the command line."""

import json
import subprocess
import time

import openai

from conftest import BIN, ROOT, admin


def team_totals(gateway, team, expected_requests):
    """Polls /admin/usage until `team` shows `expected_requests` (the writer batches rows)."""
    deadline = time.monotonic() + 15
    while True:
        rows = admin(gateway, "GET", "/admin/usage?by=team")["data"]
        row = next((r for r in rows if r["team"] == team), None)
        if row and row["requests"] >= expected_requests or time.monotonic() > deadline:
            return row


def test_the_ledger_adds_up_to_what_the_sdk_was_told(gateway, gateway_env):
    created = admin(gateway, "POST", "/admin/keys", {"name": "ledger", "team": "ledger-sdk"})
    client = openai.OpenAI(base_url=gateway + "/v1", api_key=created["key"], max_retries=0)
    prompt = 0
    completion = 0
    for text in ["one #chunks 3", "two #chunks 5"]:
        answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": text}])
        prompt += answer.usage.prompt_tokens
        completion += answer.usage.completion_tokens
    chunks = list(client.chat.completions.create(
        model="glm-4.7", messages=[{"role": "user", "content": "three #chunks 4"}],
        stream=True, stream_options={"include_usage": True},
    ))
    prompt += chunks[-1].usage.prompt_tokens
    completion += chunks[-1].usage.completion_tokens
    try:
        client.chat.completions.create(model="glm-4.7", messages=[{"role": "user", "content": "#error 1113"}])
    except openai.RateLimitError:
        pass

    row = team_totals(gateway, "ledger-sdk", 4)
    assert row == {
        "team": "ledger-sdk", "requests": 4, "prompt_tokens": prompt, "completion_tokens": completion,
        "total_tokens": prompt + completion, "cost": row["cost"],
    }
    by_key = admin(gateway, "GET", "/admin/usage?by=key")["data"]
    assert any(r["api_key_id"] == created["id"] and r["requests"] == 4 for r in by_key)
    by_model = {r["model"]: r for r in admin(gateway, "GET", "/admin/usage?by=model")["data"]}
    assert by_model["glm-4.6v"]["requests"] >= 2

    cli = subprocess.run(
        [BIN, "usage", "--by", "team", "--json"], capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**gateway_env, "PATH": "/usr/bin:/bin"},
    )
    assert cli.returncode == 0, cli.stderr
    cli_row = next(r for r in json.loads(cli.stdout)["data"] if r["team"] == "ledger-sdk")
    assert cli_row == row


def test_bad_usage_queries_are_openai_shaped_errors(gateway):
    import urllib.error
    import pytest

    for query in ["by=colour", "since=yesterday"]:
        with pytest.raises(urllib.error.HTTPError) as raised:
            admin(gateway, "GET", f"/admin/usage?{query}")
        assert raised.value.code == 400
        body = json.loads(raised.value.read())
        assert body["error"]["param"] in ("by", "since")
