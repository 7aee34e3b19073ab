"""OpenAI's Responses API with the official Python SDK, changed only in base_url and api_key."""

import json

import openai
import pydantic
import pytest

from conftest import admin

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_plain_response(client):
    response = client.responses.create(model="gpt-4o", input="Hello, responses")
    assert response.object == "response"
    assert response.status == "completed"
    assert response.store is True
    assert "Hello, responses" in response.output_text
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens


def test_streamed_response_deltas_make_the_final_text(client):
    stream = client.responses.create(model="gpt-4o", input="#chunks 5", stream=True)
    events = list(stream)
    assert events[0].type == "response.created"
    assert [e.sequence_number for e in events] == sorted(e.sequence_number for e in events)
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-1].type == "response.completed"
    final = events[-1].response
    assert final.output_text == deltas == "w1 w2 w3 w4 w5"
    assert final.usage.output_tokens == 5


def test_function_call_round_trip(client):
    first = client.responses.create(
        model="gpt-4o", input="What does get_weather say for Paris?", tools=[WEATHER]
    )
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather"
    assert "city" in json.loads(call.arguments)
    second = client.responses.create(
        model="gpt-4o",
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21C"}],
    )
    assert "sunny, 21C" in second.output_text


def test_previous_response_retrieve_input_items_and_delete(client):
    first = client.responses.create(
        model="gpt-4o",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "remember the word kiwi"}]}],
    )
    second = client.responses.create(model="gpt-4o", input="and now?", previous_response_id=first.id)
    assert second.previous_response_id == first.id

    again = client.responses.retrieve(first.id)
    assert again.id == first.id and again.output_text == first.output_text

    items = client.responses.input_items.list(first.id, order="asc")
    texts = [part.text for item in items.data for part in item.content]
    assert texts == ["remember the word kiwi"]

    deleted = client.responses.delete(first.id)
    assert deleted is None or getattr(deleted, "deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)


def test_other_teams_cannot_see_a_response(client, gateway):
    mine = client.responses.create(model="gpt-4o", input="private")
    other_key = admin(gateway, "POST", "/admin/keys", {"name": "other", "team": "elsewhere"})["key"]
    other = openai.OpenAI(base_url=gateway + "/v1", api_key=other_key, max_retries=0, timeout=30)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.input_items.list(mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="gpt-4o", input="hi", previous_response_id=mine.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(mine.id)
    assert client.responses.retrieve(mine.id).id == mine.id


def test_refused_built_in_tool(client):
    with pytest.raises(openai.BadRequestError) as refused:
        client.responses.create(model="gpt-4o", input="x", tools=[{"type": "file_search", "vector_store_ids": ["vs_1"]}])
    assert refused.value.param == "tools"
    assert "file_search" in refused.value.message


class City(pydantic.BaseModel):
    name: str
    population: int


@pytest.mark.parametrize("ask", ["Name a city", "Name a city #bad-json"], ids=["kept", "repaired"])
def test_json_schema_is_emulated_and_parses(client, ask):
    raw = client.responses.with_raw_response.create(
        model="gpt-4o",
        input=ask,
        text={"format": {"type": "json_schema", "name": "city", "schema": City.model_json_schema()}},
    )
    assert raw.headers["x-glm-gateway-emulated"] == "json_schema"
    assert "x-glm-gateway-validation" not in raw.headers
    City.model_validate_json(raw.parse().output_text)
    parsed = client.responses.parse(model="gpt-4o", input=ask, text_format=City)
    assert isinstance(parsed.output_parsed, City)


def test_a_forced_function_is_called(client):
    raw = client.responses.with_raw_response.create(
        model="gpt-4o",
        input="Hello",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    assert raw.headers["x-glm-gateway-emulated"] == "tool_choice"
    call = raw.parse().output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert "city" in json.loads(call.arguments)
