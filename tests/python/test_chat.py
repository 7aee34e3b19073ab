"""The official OpenAI Python SDK, changed only in base_url and api_key, against the gateway."""

import base64
import json
import time

import openai
import pytest

from conftest import admin


def ask(text):
    return [{"role": "user", "content": text}]


def test_plain_chat(client):
    completion = client.chat.completions.create(model="gpt-4o", messages=ask("Hello, GLM"))
    assert completion.object == "chat.completion"
    assert completion.model == "glm-4.6v"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert "Hello, GLM" in choice.message.content
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


def test_streamed_chat_arrives_as_it_is_made(client):
    started = time.monotonic()
    stream = client.chat.completions.create(
        model="glm-4.7", messages=ask("#slow 250 #chunks 6"), stream=True
    )
    arrivals, chunks = [], []
    for chunk in stream:
        arrivals.append(time.monotonic() - started)
        chunks.append(chunk)
    assert arrivals[0] + 1.0 < arrivals[-1], arrivals
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text.split() == ["w1", "w2", "w3", "w4", "w5", "w6"]


def test_include_usage_ends_with_one_usage_chunk(client):
    stream = client.chat.completions.create(
        model="glm-4.7", messages=ask("#chunks 4"), stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == []
    assert last.usage.completion_tokens == 4
    assert last.usage.total_tokens == last.usage.prompt_tokens + 4
    assert all(c.usage is None and len(c.choices) == 1 for c in chunks[:-1])


WEATHER = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]


def test_tool_calls(client):
    completion = client.chat.completions.create(model="glm-4.7", messages=ask("Weather in Paris? #tool"), tools=WEATHER)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "emulated"}

    followup = client.chat.completions.create(
        model="glm-4.7",
        tools=WEATHER,
        messages=[
            *ask("Weather in Paris? #tool"),
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
    )
    assert followup.choices[0].message.content == "The tool said: sunny"


def test_streamed_tool_calls_finish_once(client):
    stream = client.chat.completions.create(
        model="glm-4.7", messages=ask("Weather? #tool"), tools=WEATHER, stream=True
    )
    chunks = list(stream)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].index == 0 and calls[0].id.startswith("call_") and calls[0].function.name == "get_weather"


def test_vision_data_urls_and_glm_extra_body_reach_zhipu(client):
    image = "data:image/png;base64," + base64.b64encode(b"not really a png").decode()
    completion = client.chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": [
            {"type": "text", "text": "#echo"},
            {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
        ]}],
        temperature=0,
        user="u1",
        extra_body={"thinking": {"type": "disabled"}},
    )
    sent = json.loads(completion.choices[0].message.content)
    part = sent["messages"][0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": base64.b64encode(b"not really a png").decode()}}
    assert sent["do_sample"] is False and "temperature" not in sent
    assert len(sent["user_id"]) >= 6
    assert sent["thinking"] == {"type": "disabled"}


@pytest.mark.parametrize("directive, error, status, code", [
    ("#error 1113", openai.RateLimitError, 429, "insufficient_quota"),
    ("#error 1302", openai.RateLimitError, 429, "rate_limit_exceeded"),
    ("#error 1211", openai.NotFoundError, 404, "model_not_found"),
    ("#error 1261", openai.BadRequestError, 400, "context_length_exceeded"),
    ("#error 1301", openai.BadRequestError, 400, "content_filter"),
    ("#error 1110", openai.PermissionDeniedError, 403, "upstream_account_unavailable"),
    ("#error 1002", openai.InternalServerError, 502, "upstream_auth_failed"),
    ("#error 1305", openai.InternalServerError, 503, "upstream_overloaded"),
    ("#http html", openai.InternalServerError, 502, "upstream_error"),
])
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_become_the_matching_sdk_exceptions(client, directive, error, status, code, stream):
    with pytest.raises(error) as raised:
        result = client.chat.completions.create(model="glm-4.7", messages=ask(directive), stream=stream)
        list(result) if stream else None
    assert raised.value.status_code == status
    assert raised.value.code == code
    assert raised.value.response.headers.get("x-request-id")


def test_rate_limits_carry_retry_hints(client):
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="glm-4.7", messages=ask("#error 1113"))
    assert raised.value.response.headers["x-should-retry"] == "false"
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(model="glm-4.7", messages=ask("#error 1302"))
    assert 0 < int(raised.value.response.headers["retry-after"]) <= 60


def test_an_error_mid_stream_raises_in_the_sdk(client):
    stream = client.chat.completions.create(model="glm-4.7", messages=ask("#midstream-error"), stream=True)
    received = []
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received.append(chunk)
    assert len(received) == 2


def test_requests_the_gateway_refuses(client, gateway):
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="glm-4.7", messages=ask("x"), stop=["a", "b"])
    assert raised.value.param == "stop"
    with pytest.raises(openai.BadRequestError) as raised:
        client.chat.completions.create(model="glm-4.7", messages=ask("x"), n=3)
    assert raised.value.param == "n"


def test_key_errors(gateway, key):
    bad = openai.OpenAI(base_url=gateway + "/v1", api_key="sk-glm-nosuch-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as raised:
        bad.models.list()
    assert raised.value.code == "invalid_api_key"

    limited = admin(gateway, "POST", "/admin/keys", {"name": "limited", "team": "sdk", "models": ["gpt-4o"]})
    client = openai.OpenAI(base_url=gateway + "/v1", api_key=limited["key"], max_retries=0)
    assert client.chat.completions.create(model="gpt-4o", messages=ask("hi")).choices
    with pytest.raises(openai.PermissionDeniedError) as raised:
        client.chat.completions.create(model="glm-5", messages=ask("hi"))
    assert raised.value.code == "model_not_allowed"

    admin(gateway, "DELETE", f"/admin/keys/{limited['id']}")
    with pytest.raises(openai.AuthenticationError) as raised:
        client.models.list()
    assert raised.value.code == "api_key_revoked"


def test_models_list_and_retrieve(client):
    ids = [model.id for model in client.models.list()]
    assert "glm-4.7" in ids and "glm-4.6v" in ids
    model = client.models.retrieve("glm-4.7")
    assert model.id == "glm-4.7" and model.object == "model" and model.owned_by == "zhipuai"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
