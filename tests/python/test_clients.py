"""Real clients, used the way their documentation shows, work against the gateway unchanged:
the OpenAI SDK's structured-output helper (whose parsed messages go back into the next request),
LangChain's chat model and embeddings, a key made on the command line, and the demo's own snippet."""

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

import openai
import pytest
import tiktoken
import tiktoken.registry
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from pydantic import BaseModel

from conftest import BIN, ROOT
from upstream import upstream_embeddings


class Step(BaseModel):
    explanation: str
    output: str


class MathAnswer(BaseModel):
    steps: list[Step]
    final_answer: str


class City(BaseModel):
    name: str
    country: str
    landmarks: list[str]


def ask(text):
    return [{"role": "user", "content": text}]


def test_parse_returns_the_model_and_its_message_can_be_sent_back(client):
    messages = [
        {"role": "system", "content": "You are a helpful math tutor. Answer step by step."},
        {"role": "user", "content": "How can I solve 8x + 7 = -23?"},
    ]
    completion = client.chat.completions.parse(model="gpt-4o", messages=messages, response_format=MathAnswer)
    message = completion.choices[0].message
    assert isinstance(message.parsed, MathAnswer)
    assert isinstance(message.parsed.steps, list)
    assert all(isinstance(step, Step) for step in message.parsed.steps)

    # As users do: the SDK's own message object (with `parsed`, `refusal`, `annotations`) goes
    # straight back into the conversation.
    messages.append(message)
    messages.append({"role": "user", "content": "Now solve 2x - 4 = 10 the same way."})
    again = client.chat.completions.parse(model="gpt-4o", messages=messages, response_format=MathAnswer)
    assert isinstance(again.choices[0].message.parsed, MathAnswer)


def test_beta_parse_helper_also_works(client):
    completion = client.beta.chat.completions.parse(
        model="gpt-4o", messages=ask("Tell me about Paris."), response_format=City
    )
    assert isinstance(completion.choices[0].message.parsed, City)


def test_json_schema_is_marked_as_emulated(client):
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-4o",
        messages=ask("Tell me about Rome as JSON."),
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "city", "strict": True, "schema": City.model_json_schema()},
        },
    )
    assert raw.headers["x-glm-gateway-emulated"] == "json_schema"
    City.model_validate_json(raw.parse().choices[0].message.content)


def test_langchain_structured_output(gateway, key):
    llm = ChatOpenAI(model="gpt-4o", base_url=gateway + "/v1", api_key=key, max_retries=0, timeout=30)
    answer = llm.with_structured_output(City).invoke("Tell me about Lisbon.")
    assert isinstance(answer, City)


@pytest.fixture
def offline_cl100k(monkeypatch):
    """LangChain tokenizes with tiktoken's cl100k_base, which tiktoken downloads on first use;
    this machine has no network for that, so a byte-level stand-in takes its name. LangChain then
    sends arrays of token ids just as it does with the real tokenizer (only the ids differ)."""
    encoding = tiktoken.Encoding(
        name="cl100k_base",
        pat_str=r"\S+|\s+",
        mergeable_ranks={bytes([b]): b for b in range(256)},
        special_tokens={"<|endoftext|>": 256},
    )
    monkeypatch.setitem(tiktoken.registry.ENCODINGS, "cl100k_base", encoding)
    return encoding


def test_langchain_embeddings_default_gets_a_clear_error(gateway, key, offline_cl100k):
    embeddings = OpenAIEmbeddings(
        model="text-embedding-3-small", base_url=gateway + "/v1", api_key=key, max_retries=0
    )
    with pytest.raises(openai.BadRequestError) as raised:
        embeddings.embed_documents(["hello world", "goodbye"])
    assert raised.value.status_code == 400
    assert "check_embedding_ctx_length" in raised.value.message


def test_langchain_embeddings_without_tokenizing_match_upstream(gateway, key, emulator):
    embeddings = OpenAIEmbeddings(
        model="text-embedding-3-small", base_url=gateway + "/v1", api_key=key, max_retries=0,
        check_embedding_ctx_length=False,
    )
    texts = ["LangChain says hi", "and embeds two texts"]
    got = embeddings.embed_documents(texts)
    query = embeddings.embed_query("a query")
    expected, _ = upstream_embeddings(emulator, texts + ["a query"])
    assert len(got) == 2
    for vector, want in zip([*got, query], expected):
        assert len(vector) == len(want)
        assert max(abs(a - b) for a, b in zip(vector, want)) <= 1e-6


def test_a_key_made_on_the_command_line_works_within_50_ms(gateway, gateway_env):
    created = subprocess.run(
        [BIN, "keys", "create", "--name", "x", "--team", "y", "--json"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, env={**os.environ, **gateway_env},
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)["key"]
    started = time.monotonic()
    statuses = []
    while True:
        request = urllib.request.Request(gateway + "/v1/models", headers={"Authorization": f"Bearer {key}"})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status = response.status
        except urllib.error.HTTPError as error:
            status = error.code
        statuses.append(status)
        elapsed = time.monotonic() - started
        if status == 200:
            break
        assert elapsed < 0.050, f"key still refused after {elapsed * 1000:.0f} ms: {statuses}"
        time.sleep(0.002)
    assert elapsed < 0.050


def demo_snippet(lines):
    """The Python lines the demo banner prints under its "OpenAI Python SDK" heading, as printed:
    they must run pasted as they are (no indentation to strip)."""
    start = next(i for i, line in enumerate(lines) if "Python SDK" in line) + 1
    snippet = []
    for line in lines[start:]:
        if not line.strip():
            break
        snippet.append(line)
    return "\n".join(snippet) + "\n"


def test_the_demo_snippet_runs_as_printed(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    demo = subprocess.Popen(
        [BIN, "demo", "--listen", "127.0.0.1:0"], cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={k: v for k, v in os.environ.items() if not k.startswith(("GLM_GATEWAY_", "ZHIPU"))},
    )
    try:
        lines = []
        for line in demo.stdout:
            lines.append(line.rstrip("\n"))
            if "Ctrl-C" in line:
                break
        assert any("Python SDK" in line for line in lines), "\n".join(lines)
        snippet = demo_snippet(lines)
        script = tmp_path / "snippet.py"
        script.write_text(snippet)
        ran = subprocess.run(
            [sys.executable, str(script)], cwd=folder, capture_output=True, text=True, timeout=60
        )
        assert ran.returncode == 0, f"{snippet}\n{ran.stderr}"
        answers = ran.stdout.strip().splitlines()
        assert len(answers) == 2 and all(answers), snippet  # chat, then the Responses API
    finally:
        demo.terminate()
        demo.wait(timeout=15)
    assert demo.returncode == 0
    log = demo.stderr.read()
    assert "keys=1" in log and "keys=0" not in log, log
    assert list(folder.iterdir()) == [], "the demo keeps its files out of the folder it runs in"
