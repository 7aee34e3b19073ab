"""Starts the real glm-gateway binary for the OpenAI-SDK tests: the GLM emulator as the
upstream, the gateway on a fresh PostgreSQL database, both on ephemeral ports."""

import json
import os
import subprocess
import urllib.request
import uuid
from pathlib import Path

import pytest
from openai import OpenAI

ROOT = Path(__file__).resolve().parents[2]
BIN = os.environ.get("GLM_GATEWAY_BIN", str(ROOT / "target" / "debug" / "glm-gateway"))
PG = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
UPSTREAM_KEY = "pytest-upstream.pytest-upstream-secret-0123456789"
ADMIN_TOKEN = "pytest-admin-token"


class Process:
    """A child process whose first stdout line containing `marker` names its URL."""

    def __init__(self, args, marker, env=None):
        self.proc = subprocess.Popen(
            [BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})}, cwd=ROOT,
        )
        self.lines = []
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if marker in line:
                self.url = line.split("http://", 1)[1].split()[0].rstrip("/")
                self.url = "http://" + self.url
                return
        raise RuntimeError(f"{args[0]} exited early: {self.proc.stderr.read()}")

    def line_after(self, label):
        """The rest of the first output line that starts with `label`, reading on as needed."""
        for line in self.lines:
            if line.strip().startswith(label):
                return line.split(label, 1)[1].strip()
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.strip().startswith(label):
                return line.split(label, 1)[1].strip()
        raise KeyError(label)

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def fresh_database():
    name = f"glm_test_{uuid.uuid4().hex}"
    subprocess.run(["psql", f"{PG}/postgres", "-qc", f"CREATE DATABASE {name}"], check=True)
    return f"{PG}/{name}"


@pytest.fixture(scope="session")
def emulator():
    proc = Process(["emulator", "--api-key", UPSTREAM_KEY, "--chunk-delay-ms", "5"], "listening on")
    yield proc.url
    proc.stop()


@pytest.fixture(scope="session")
def gateway_env(emulator, tmp_path_factory):
    """The environment the session's gateway runs with (its database, upstream, tokens)."""
    return {
        "GLM_GATEWAY_JOURNAL_DIR": str(tmp_path_factory.mktemp("journal")),
        "DATABASE_URL": fresh_database(),
        "ZHIPUAI_API_KEY": UPSTREAM_KEY,
        "ZHIPUAI_BASE_URL": emulator,
        "GLM_GATEWAY_LISTEN": "127.0.0.1:0",
        "GLM_GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
    }


@pytest.fixture(scope="session")
def gateway(gateway_env):
    proc = Process(["serve"], "listening on", gateway_env)
    yield proc.url
    proc.stop()


def admin(gateway, method, path, body=None):
    request = urllib.request.Request(
        gateway + path, method=method, data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.loads(response.read())


@pytest.fixture(scope="session")
def key(gateway):
    return admin(gateway, "POST", "/admin/keys", {"name": "pytest", "team": "sdk"})["key"]


@pytest.fixture
def client(gateway, key):
    return OpenAI(base_url=gateway + "/v1", api_key=key, max_retries=0, timeout=30)
