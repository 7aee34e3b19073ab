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
    for command in [[], ["serve"], ["demo"], ["migrate"], ["keys"], ["keys", "create"], ["keys", "list"], ["keys", "revoke"], ["keys", "update"], ["teams"], ["teams", "set"], ["teams", "list"], ["emulator"], ["prices"]]:
        result = run(*command, "--help")
        assert result.returncode == 0 and "Usage" in result.stdout, command


def test_prices_prints_what_every_default_alias_target_costs_today(tmp_path):
    listed = run("prices", "--json")
    assert listed.returncode == 0, listed.stderr
    models = {row["model"]: row for row in json.loads(listed.stdout)["data"]}
    for target in ["glm-5.1", "glm-4.7", "glm-4.7-flash", "glm-4.7-flashx", "glm-4.6v", "glm-4.6v-flash", "glm-5-turbo", "embedding-3", "cogview-4-250304"]:
        assert target in models, target
    tiers = models["glm-4.7"]["tiers"]
    assert [(t["input"], t["output"], t["cached"]) for t in tiers] == [("2", "8", "0.4"), ("3", "14", "0.6"), ("4", "16", "0.8")]
    assert models["cogview-4-250304"]["per_image"] == "0.06"
    # A configured price wins; a model no price covers says so.
    config = tmp_path / "gateway.toml"
    config.write_text('[[prices]]\nmodel = "glm-4.6"\nsince = "2026-01-01"\ninput = 2\noutput = 8\n')
    one = run("--config", str(config), "prices", "--model", "glm-4.6")
    assert one.returncode == 0 and "glm-4.6" in one.stdout and "configuration" in one.stdout, one.stdout
    missing = run("prices", "--model", "glm-4.6")
    assert missing.returncode != 0 and "no price covers" in missing.stderr
