"""Image generation through the gateway with the official OpenAI Python SDK: DALL·E names go to
CogView, `n` images come from `n` upstream calls, `b64_json` carries the very bytes the upstream
serves, and what CogView cannot do is refused in OpenAI's shape."""

import base64
import io

import openai
import pytest

from upstream import PNG_SIGNATURE, fetch, ledger_row


def test_an_image_by_url(client):
    response = client.images.generate(model="dall-e-3", prompt="a lighthouse at dusk", n=1)
    assert response.created > 0
    assert len(response.data) == 1
    image = response.data[0]
    assert image.url.startswith("http://") and image.b64_json is None
    data = fetch(image.url)
    assert data.startswith(PNG_SIGNATURE) and len(data) > len(PNG_SIGNATURE)


def test_b64_json_carries_the_bytes_the_upstream_serves(client):
    """The emulator's picture depends only on the prompt (and size), so a `url` answer for the same
    prompt names an image with the bytes `b64_json` must carry."""
    prompt = "a green teapot on a wooden table"
    by_url = client.images.generate(model="dall-e-3", prompt=prompt, size="1024x1024")
    served = fetch(by_url.data[0].url)
    by_b64 = client.images.generate(model="dall-e-3", prompt=prompt, size="1024x1024", response_format="b64_json")
    assert len(by_b64.data) == 1
    image = by_b64.data[0]
    assert image.url is None
    decoded = base64.b64decode(image.b64_json, validate=True)
    assert decoded.startswith(PNG_SIGNATURE) and len(decoded) > len(PNG_SIGNATURE)
    assert decoded == served


def test_n_images_each_with_their_own_url(client):
    response = client.images.generate(model="dall-e-2", prompt="two paper boats", n=2)
    urls = [image.url for image in response.data]
    assert len(urls) == 2 and len(set(urls)) == 2
    for url in urls:
        assert fetch(url).startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("size", ["256x256", "512x512", "auto"])
def test_openai_sizes_are_mapped(client, size):
    response = client.images.generate(model="dall-e-2", prompt="a small square", size=size)
    assert len(response.data) == 1
    assert fetch(response.data[0].url).startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("size", ["100x100", "abc"])
def test_a_size_that_cannot_be_mapped_is_refused(client, size):
    with pytest.raises(openai.BadRequestError) as raised:
        client.images.generate(model="dall-e-2", prompt="too small", size=size)
    assert raised.value.status_code == 400
    assert raised.value.param == "size"


def tiny_png():
    return io.BytesIO(base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
    ))


def test_edits_and_variations_say_cogview_does_not_offer_them(client):
    attempts = [
        lambda: client.images.edit(model="dall-e-2", image=("in.png", tiny_png(), "image/png"), prompt="add a hat"),
        lambda: client.images.create_variation(model="dall-e-2", image=("in.png", tiny_png(), "image/png")),
    ]
    for attempt in attempts:
        with pytest.raises(openai.APIStatusError) as raised:
            attempt()
        assert raised.value.status_code in (400, 404)
        assert "cogview" in raised.value.message.lower()
        body = raised.value.response.json()
        assert set(body["error"]) >= {"message", "type", "param", "code"}


def test_one_ledger_row_counts_the_images(client, gateway_env):
    raw = client.images.with_raw_response.generate(model="dall-e-2", prompt="ledger: two kites", n=2)
    response = raw.parse()
    assert len(response.data) == 2
    request_id = raw.headers["x-request-id"]
    row = ledger_row(gateway_env["DATABASE_URL"], request_id)
    assert row is not None, f"no usage_events row for {request_id}"
    assert {k: row[k] for k in (
        "request_id", "team", "endpoint", "requested_model", "streamed", "status_code",
        "prompt_tokens", "completion_tokens", "total_tokens", "image_count",
    )} == {
        "request_id": request_id, "team": "sdk", "endpoint": "images", "requested_model": "dall-e-2",
        "streamed": False, "status_code": 200, "prompt_tokens": 0, "completion_tokens": 0,
        "total_tokens": 0, "image_count": 2,
    }
    assert row["upstream_model"].startswith("cogview")
