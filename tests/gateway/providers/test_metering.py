"""Usage and cost in history, to the micro-dollar, from each vendor's own numbers, on every
face and for streams; unpriced is never zero; abandoned streams are metered, flagged
estimated where counts had to be estimated."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.support.procs import wait_until

OPENAI, ANTHROPIC, GOOGLE = "/v1/chat/completions", "/anthropic/v1/messages", "/google/v1/models"


def body(face: str, model: str, text: str, stream: bool) -> tuple[str, dict]:
    if face == "openai":
        return OPENAI, {"model": model, "stream": stream,
                        "messages": [{"role": "user", "content": text}]}
    if face == "anthropic":
        return ANTHROPIC, {"model": model, "max_tokens": 500, "stream": stream,
                           "messages": [{"role": "user", "content": text}]}
    method = "streamGenerateContent?alt=sse" if stream else "generateContent"
    return f"{GOOGLE}/{model}:{method}", {"contents": [{"role": "user",
                                                        "parts": [{"text": text}]}]}


CASES = [
    # face, model, stream, usage the vendor reports, (prompt, cached, completion, reasoning), µ$
    ("openai", "gpt-4o-mini", False, "prompt=1000 cached=400 completion=200",
     (1000, 400, 200, 0), 600 * 0.15 + 400 * 0.075 + 200 * 0.60),
    ("openai", "gpt-4.1-mini", True, "prompt=2000 cached=1000 completion=500 reasoning=300",
     (2000, 1000, 500, 300), 1000 * 0.40 + 1000 * 0.10 + 500 * 1.60),
    ("openai", "gpt-4.1", True, "prompt=1234 cached=234 completion=56",
     (1234, 234, 56, 0), 1000 * 2.00 + 234 * 0.50 + 56 * 8.00),
    ("anthropic", "claude-sonnet-4-5", False, "prompt=1000 cached=400 completion=100",
     (1000, 400, 100, 0), 600 * 3.00 + 400 * 0.30 + 100 * 15.00),
    ("openai", "claude-opus-4-1", True, "prompt=2000 cached=1000 write=500 completion=10",
     (2000, 1000, 10, 0), 500 * 15.00 + 1000 * 1.50 + 500 * 18.75 + 10 * 75.00),
    ("google", "gemini-2.5-pro", False, "prompt=1000 cached=200 completion=300 reasoning=100",
     (1000, 200, 300, 100), 800 * 1.25 + 200 * 0.3125 + 200 * 10.00 + 100 * 10.00),
    ("openai", "gemini-2.5-flash-lite", True, "prompt=10000 completion=1000",
     (10000, 0, 1000, 0), 10000 * 0.10 + 1000 * 0.40),
    ("anthropic", "gemini-2.5-flash", True, "prompt=3000 cached=1000 completion=700 "
     "reasoning=200", (3000, 1000, 700, 200),
     2000 * 0.30 + 1000 * 0.075 + 500 * 2.50 + 200 * 2.50),
]


@pytest.mark.parametrize(("face", "model", "stream", "usage", "counts", "micro_usd"), CASES,
                         ids=[f"{c[0]}-{c[1]}-{'stream' if c[2] else 'plain'}" for c in CASES])
def test_cost_to_the_micro_dollar(api, fakes, face, model, stream, usage, counts, micro_usd):
    path, payload = body(face, model, f"meter me [[usage {usage}]]", stream)
    response = api().post(path, payload)
    assert response.status_code == 200, response.text
    row = api().finished_run()
    assert (row["status"], row["api"], row["cost_status"]) == ("ok", face, "priced")
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"],
            row["reasoning_tokens"]) == counts
    assert row["cost_micro_usd"] == int(micro_usd + 0.5)  # half up, rounded once


def test_unpriced_model_is_recorded_unpriced_not_free(api):
    # An admin has no dollar limit: an unknown family member is served, and unpriced.
    response = api("admin").post(OPENAI, {"model": "claude-unlisted-9",
                                          "messages": [{"role": "user", "content": "hi"}]})
    assert response.status_code == 200, response.text
    row = api("admin").last_run()
    assert (row["model"], row["cost_micro_usd"], row["cost_status"]) == (
        "claude-unlisted-9", None, "unpriced")
    assert row["completion_tokens"] > 0
    # A student has a monthly budget: the same kind of name is refused, with a row saying so.
    refused = api().post(OPENAI, {"model": "gpt-4.1-unlisted",
                                  "messages": [{"role": "user", "content": "hi"}]})
    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "model_unpriced" and "administrator must give it a price" in (
        error["message"])
    row = api().last_run()
    assert (row["model"], row["error_code"], row["cost_micro_usd"]) == (
        "gpt-4.1-unlisted", "model_unpriced", None)


@pytest.mark.parametrize(("path_of", "payload_of", "prompt_exact"), [
    (lambda: OPENAI, lambda text: {"model": "gpt-4o-mini", "stream": True,
                                   "messages": [{"role": "user", "content": text}]}, False),
    (lambda: ANTHROPIC, lambda text: {"model": "claude-haiku-4-5", "max_tokens": 500,
                                      "stream": True,
                                      "messages": [{"role": "user", "content": text}]}, True),
], ids=["openai", "anthropic"])
def test_abandoned_stream_is_metered_as_estimated(api, path_of, payload_of, prompt_exact):
    caller = api("student_b")
    text = "long [[words n=200 delay=0.02]] [[usage prompt=777]]"
    received = 0
    with httpx.stream("POST", caller.url + path_of(), json=payload_of(text),
                      headers=caller.headers, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data:") and re.search(r'"\s?w\d+"', line):
                received += 1
            if received == 5:
                break

    def finished() -> bool:
        return caller.last_run()["status"] != "running"

    wait_until(finished, 10, "abandoned run finished")
    row = caller.last_run()
    assert (row["status"], row["error_code"], row["cost_status"]) == (
        "error", "client_disconnected", "estimated")
    assert 5 <= row["completion_tokens"] < 200
    assert row["cost_micro_usd"] > 0
    # Anthropic says the input count in message_start: exact even though the caller left
    assert (row["prompt_tokens"] == 777) is prompt_exact


def test_models_list_metadata_and_prices(api):
    models = {m["id"]: m for m in api().get("/v1/models")["data"]}
    assert {"gpt-4o-mini", "claude-haiku-4-5", "gemini-2.5-flash", "kling-v2-1", "midjourney",
            "eleven_multilingual_v2", "mock/video", "gpt-image-1"} <= set(models)
    claude = models["claude-haiku-4-5"]
    assert (claude["provider"], claude["kind"], claude["context_window"],
            claude["streaming"]) == ("anthropic", "chat", 200000, True)
    assert claude["pricing"]["cache_write_per_mtok"] == "1.25"
    assert models["dall-e-3"]["pricing"]["per_image"]["1024x1792"]["hd"] == "0.12"
    assert models["kling-v2-1"]["pricing"]["per_second"] == {"std": "0.056", "pro": "0.098"}
    assert models["eleven_flash_v2_5"]["pricing"]["per_1k_chars"] == "0.05"
    assert models["midjourney"]["pricing"]["per_task"] == "0.04"
    assert json.dumps(models)  # plain JSON all the way down
