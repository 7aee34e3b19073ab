"""Embeddings through the gateway with the official OpenAI Python SDK, compared number for
number with what the emulator behind it answers for the same texts."""

import base64
import json
import struct

import openai
import pytest

from upstream import f32, ledger_row, upstream_embeddings

MODEL = "text-embedding-3-small"


def test_default_encoding_decodes_to_the_upstream_vector(client, emulator):
    text = "The quick brown fox jumps over the lazy dog"
    response = client.embeddings.create(model=MODEL, input=text)
    (expected,), upstream_usage = upstream_embeddings(emulator, [text])
    assert response.object == "list"
    assert [d.index for d in response.data] == [0]
    got = response.data[0].embedding
    assert len(got) == len(expected) == 2048
    assert got == f32(expected)
    assert response.usage.prompt_tokens == upstream_usage["prompt_tokens"]
    assert response.usage.total_tokens == upstream_usage["total_tokens"]


def test_the_sdk_default_really_is_base64_on_the_wire(client, emulator):
    """The SDK sends encoding_format=base64 and would also accept floats back; the wire must carry
    base64 of little-endian float32, or SDKs that decode unconditionally get garbage."""
    text = "wire format"
    raw = client.embeddings.with_raw_response.create(model=MODEL, input=[text, "second"])
    body = json.loads(raw.http_response.text)
    (expected, _), _ = upstream_embeddings(emulator, [text, "second"])
    encoded = body["data"][0]["embedding"]
    assert isinstance(encoded, str)
    data = base64.b64decode(encoded, validate=True)
    assert len(data) == 4 * len(expected)
    assert list(struct.unpack(f"<{len(expected)}f", data)) == f32(expected)
    assert raw.parse().data[0].embedding == f32(expected)


def test_explicit_base64_is_returned_as_base64(client, emulator):
    response = client.embeddings.create(model=MODEL, input="explicit", encoding_format="base64")
    (expected,), _ = upstream_embeddings(emulator, ["explicit"])
    encoded = response.data[0].embedding
    assert isinstance(encoded, str)
    data = base64.b64decode(encoded)
    assert list(struct.unpack(f"<{len(data) // 4}f", data)) == f32(expected)


def test_float_encoding_returns_numbers(client, emulator):
    texts = ["floats please", "and another"]
    response = client.embeddings.create(model=MODEL, input=texts, encoding_format="float")
    expected, _ = upstream_embeddings(emulator, texts)
    assert [d.index for d in response.data] == [0, 1]
    for item, want in zip(response.data, expected):
        assert isinstance(item.embedding, list)
        assert all(isinstance(x, float) for x in item.embedding)
        assert f32(item.embedding) == f32(want)


def test_a_hundred_inputs_are_split_and_joined_in_order(client, emulator):
    texts = [f"item number {i} " + "word " * (i % 7) for i in range(100)]
    response = client.embeddings.create(model=MODEL, input=texts)
    first, first_usage = upstream_embeddings(emulator, texts[:64])
    rest, rest_usage = upstream_embeddings(emulator, texts[64:])
    expected = first + rest
    assert [d.index for d in response.data] == list(range(100))
    for i, (item, want) in enumerate(zip(response.data, expected)):
        assert item.embedding == f32(want), f"item {i}"
    assert response.usage.prompt_tokens == first_usage["prompt_tokens"] + rest_usage["prompt_tokens"]
    assert response.usage.total_tokens == first_usage["total_tokens"] + rest_usage["total_tokens"]


def test_dimensions_reach_embedding_3(client, emulator):
    response = client.embeddings.create(model=MODEL, input="short vector", dimensions=256)
    (expected,), _ = upstream_embeddings(emulator, ["short vector"], dimensions=256)
    assert len(expected) == 256
    assert response.data[0].embedding == f32(expected)


def test_dimensions_on_a_model_without_them_is_refused(client):
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model="embedding-2", input="fixed size", dimensions=256)
    assert raised.value.status_code == 400
    assert raised.value.param == "dimensions"


@pytest.mark.parametrize("tokens", [[[1, 2, 3]], [1, 2, 3]])
def test_token_id_input_names_the_langchain_switch(client, tokens):
    with pytest.raises(openai.BadRequestError) as raised:
        client.embeddings.create(model=MODEL, input=tokens)
    assert raised.value.status_code == 400
    assert "check_embedding_ctx_length=False" in raised.value.message


def test_one_ledger_row_for_an_embeddings_call(client, gateway_env):
    raw = client.embeddings.with_raw_response.create(model=MODEL, input=["ledger one", "ledger two"])
    response = raw.parse()
    request_id = raw.headers["x-request-id"]
    row = ledger_row(gateway_env["DATABASE_URL"], request_id)
    assert row is not None, f"no usage_events row for {request_id}"
    assert {k: row[k] for k in (
        "request_id", "team", "endpoint", "requested_model", "upstream_model", "streamed", "status_code",
        "prompt_tokens", "completion_tokens", "total_tokens", "image_count", "usage_source",
    )} == {
        "request_id": request_id, "team": "sdk", "endpoint": "embeddings", "requested_model": MODEL,
        "upstream_model": "embedding-3", "streamed": False, "status_code": 200,
        "prompt_tokens": response.usage.prompt_tokens, "completion_tokens": 0,
        "total_tokens": response.usage.total_tokens, "image_count": 0, "usage_source": "upstream",
    }
    assert response.usage.prompt_tokens > 0
