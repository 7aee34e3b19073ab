"""The command line as a user meets it: the demo, key management, and bad settings."""

import json
import os
import subprocess

import openai

from conftest import BIN, ROOT, Process, fresh_database


def run(*args, env=None):
    return subprocess.run(
        [BIN, *args], capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, **(env or {})}
    )


def test_demo_answers_the_openai_sdk():
    demo = Process(["demo", "--listen", "127.0.0.1:0"], "listening on")
    try:
        key = demo.line_after("API key")
        client = openai.OpenAI(base_url=demo.url + "/v1", api_key=key, max_retries=0)
        answer = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello!"}])
        assert "Hello!" in answer.choices[0].message.content
        stream = client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Hi"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    finally:
        demo.stop()
    assert demo.proc.returncode == 0


def test_keys_create_list_revoke():
    env = {"DATABASE_URL": fresh_database()}
    created = run("keys", "create", "--name", "ci", "--team", "platform", "--models", "glm-4.7,gpt-4*", "--json", env=env)
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    assert key["key"].startswith("sk-glm-") and key["models"] == ["glm-4.7", "gpt-4*"]

    listed = json.loads(run("keys", "list", "--json", env=env).stdout)
    assert [k["id"] for k in listed] == [key["id"]]
    assert key["key"] not in json.dumps(listed)

    assert run("keys", "revoke", key["id"], env=env).returncode == 0
    assert json.loads(run("keys", "list", "--json", env=env).stdout)[0]["revoked_at"]
    missing = run("keys", "revoke", "nosuchkey", env=env)
    assert missing.returncode == 1 and "nosuchkey" in missing.stderr


def test_bad_settings_stop_with_one_line_and_status_2():
    cases = [
        ({"GLM_GATEWAY_LISTEN": "nowhere"}, "listen"),
        ({"ZHIPUAI_API_KEY": "", "ZHIPU_API_KEY": ""}, "zhipu.api_keys"),
        ({"ZHIPUAI_API_KEY": "nodot"}, "zhipu.api_keys"),
        ({"DATABASE_URL": "mysql://x"}, "database_url"),
    ]
    for env, setting in cases:
        result = run("serve", env={"ZHIPUAI_API_KEY": "a.b", **env})
        assert result.returncode == 2, (env, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and setting in lines[0], result.stderr


def test_every_command_has_help():
    for command in [[], ["serve"], ["demo"], ["migrate"], ["keys"], ["keys", "create"], ["keys", "list"], ["keys", "revoke"], ["keys", "update"], ["teams"], ["teams", "set"], ["teams", "list"], ["emulator"]]:
        result = run(*command, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout, command
