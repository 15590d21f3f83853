"""Tool calling through every face and vendor, with the official SDKs against the fakes
(which speak each vendor's own tool-call wire format, streamed and not).

The fakes' rule (tests/fakes/common.py): ``[[tool]]`` calls the first tool offered,
``[[tools]]`` every tool at once; a conversation ending with tool results is answered
"... tool said: <results>". Each direction is checked on what the SDK hands the student
and on what the vendor really received (the fakes' request logs)."""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from anthropic import Anthropic
from google import genai
from google.genai import errors, types
from openai import OpenAI

WEATHER = {"type": "function", "function": {
    "name": "weather", "description": "Today's weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}
CLOCK = {"type": "function", "function": {
    "name": "clock", "description": "The time in a time zone.",
    "parameters": {"type": "object", "properties": {"zone": {"type": "string",
                                                             "enum": ["UTC", "KST"]}},
                   "required": ["zone"]}}}
VENDOR_MODELS = [("gpt-4o-mini", "openai"), ("claude-haiku-4-5", "anthropic"),
                 ("gemini-2.5-flash", "google")]


@pytest.fixture
def oai(vendor_gateway, tokens):
    return OpenAI(base_url=vendor_gateway.url + "/v1", api_key=tokens["student_a"],
                  max_retries=0)


@pytest.fixture
def claude(vendor_gateway, tokens):
    return Anthropic(base_url=vendor_gateway.url + "/anthropic", api_key=tokens["student_a"],
                     max_retries=0)


@pytest.fixture
def gem(vendor_gateway, tokens):
    return genai.Client(api_key=tokens["student_a"], http_options=types.HttpOptions(
        base_url=vendor_gateway.url + "/google",
        retry_options=types.HttpRetryOptions(attempts=1)))


def _streamed_calls(stream) -> tuple[list[dict], str | None]:
    """Tool calls assembled from OpenAI chunks, as a student's loop does."""
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                call = calls.setdefault(delta.index, {"id": None, "name": "", "arguments": ""})
                call["id"] = call["id"] or delta.id
                call["name"] += (delta.function.name or "") if delta.function else ""
                call["arguments"] += (delta.function.arguments or "") if delta.function else ""
            finish = choice.finish_reason or finish
    return [calls[i] for i in sorted(calls)], finish


@pytest.mark.parametrize("model,vendor", VENDOR_MODELS)
def test_openai_face_parallel_calls_and_results_round_trip(oai, fakes, model, vendor):
    messages = [{"role": "user", "content": "weather and time? [[tools]]"}]
    reply = oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER, CLOCK])
    message = reply.choices[0].message
    assert reply.choices[0].finish_reason == "tool_calls"
    assert [(c.function.name, json.loads(c.function.arguments)) for c in message.tool_calls] == [
        ("weather", {"city": "Seoul"}), ("clock", {"zone": "UTC"})]
    assert len({c.id for c in message.tool_calls}) == 2
    sent = fakes.requests(vendor)[-1]["json"]
    if vendor == "anthropic":
        assert sent["tools"][0] == {"name": "weather", "description": "Today's weather in a city.",
                                    "input_schema": WEATHER["function"]["parameters"]}
    elif vendor == "google":
        declared = sent["tools"][0]["functionDeclarations"]
        assert [d["name"] for d in declared] == ["weather", "clock"]
        assert declared[1]["parametersJsonSchema"] == CLOCK["function"]["parameters"]
    # the results go back; the vendor answers from them
    messages.append(message.model_dump(exclude_none=True))
    for call, result in zip(message.tool_calls, ["sunny", "09:00"], strict=True):
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
    answer = oai.chat.completions.create(model=model, messages=messages, tools=[WEATHER, CLOCK])
    text = answer.choices[0].message.content
    assert "tool said" in text and "sunny" in text and "09:00" in text
    sent = fakes.requests(vendor)[-1]["json"]
    if vendor == "anthropic":
        assert [b["type"] for b in sent["messages"][1]["content"]] == [
            "text", "tool_use", "tool_use"]  # Claude said a word before calling
        results = sent["messages"][2]["content"]
        assert [(b["type"], b["tool_use_id"], b["content"]) for b in results] == [
            ("tool_result", message.tool_calls[0].id, "sunny"),
            ("tool_result", message.tool_calls[1].id, "09:00")]
    elif vendor == "google":
        assert [p["functionCall"]["name"] for p in sent["contents"][1]["parts"]] == [
            "weather", "clock"]
        assert [p["functionResponse"] for p in sent["contents"][2]["parts"]] == [
            {"name": "weather", "response": {"result": "sunny"}},
            {"name": "clock", "response": {"result": "09:00"}}]


@pytest.mark.parametrize("model,vendor", VENDOR_MODELS)
def test_openai_face_streams_tool_call_deltas(oai, model, vendor, api):
    stream = oai.chat.completions.create(
        model=model, stream=True, stream_options={"include_usage": True},
        messages=[{"role": "user", "content": "both [[tools]]"}], tools=[WEATHER, CLOCK])
    calls, finish = _streamed_calls(stream)
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls] == [
        ("weather", {"city": "Seoul"}), ("clock", {"zone": "UTC"})]
    assert all(c["id"] for c in calls)
    row = api().finished_run()
    assert row["status"] == "ok" and row["provider"] == vendor and row["completion_tokens"] > 0


@pytest.mark.parametrize("model,vendor", VENDOR_MODELS)
def test_tool_choice_and_parallel_flag_translated(oai, fakes, model, vendor):
    reply = oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "just the time please"}],
        tools=[WEATHER, CLOCK], tool_choice={"type": "function", "function": {"name": "clock"}})
    assert [c.function.name for c in reply.choices[0].message.tool_calls] == ["clock"]
    sent = fakes.requests(vendor)[-1]["json"]
    if vendor == "anthropic":
        assert sent["tool_choice"] == {"type": "tool", "name": "clock"}
    elif vendor == "google":
        assert sent["toolConfig"] == {"functionCallingConfig": {
            "mode": "ANY", "allowedFunctionNames": ["clock"]}}
    one = oai.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "[[tools]]"}],
        tools=[WEATHER, CLOCK], tool_choice="required", parallel_tool_calls=False)
    sent = fakes.requests(vendor)[-1]["json"]
    if vendor == "anthropic":
        assert sent["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
        assert len(one.choices[0].message.tool_calls) == 1
    elif vendor == "openai":
        assert sent["parallel_tool_calls"] is False
        assert len(one.choices[0].message.tool_calls) == 1
    else:  # Gemini has no such switch: the mode is still ANY
        assert sent["toolConfig"]["functionCallingConfig"]["mode"] == "ANY"
    none = oai.chat.completions.create(model=model, tool_choice="none", tools=[WEATHER],
                                       messages=[{"role": "user", "content": "hi [[tool]]"}])
    assert none.choices[0].message.tool_calls is None
    assert none.choices[0].message.content


# -- the Anthropic face ---------------------------------------------------------------------

ANTHROPIC_TOOLS = [{"name": "weather", "description": "Weather.",
                    "input_schema": WEATHER["function"]["parameters"]},
                   {"name": "clock", "input_schema": CLOCK["function"]["parameters"]}]


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gpt-4o-mini", "mock/echo"])
def test_anthropic_face_tool_use_round_trip(claude, fakes, model):
    prompt = "weather clock [[tools]]"
    message = claude.messages.create(model=model, max_tokens=200, tools=ANTHROPIC_TOOLS,
                                     messages=[{"role": "user", "content": prompt}])
    uses = [b for b in message.content if b.type == "tool_use"]
    assert message.stop_reason == "tool_use"
    assert [u.name for u in uses] == ["weather", "clock"]
    if model != "mock/echo":
        assert [u.input for u in uses] == [{"city": "Seoul"}, {"zone": "UTC"}]
    if model == "gpt-4o-mini":  # translated to OpenAI's shape on the way in
        sent = fakes.requests("openai")[-1]["json"]
        assert sent["tools"][1] == {"type": "function", "function": {
            "name": "clock", "description": "", "parameters": CLOCK["function"]["parameters"]}}
    follow = claude.messages.create(model=model, max_tokens=200, tools=ANTHROPIC_TOOLS, messages=[
        {"role": "user", "content": prompt},
        {"role": "assistant", "content": [u.model_dump(exclude_none=True) for u in uses]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": uses[0].id, "content": "rain"},
            {"type": "tool_result", "tool_use_id": uses[1].id, "content": [
                {"type": "text", "text": "noon"}], "is_error": False}]}])
    text = "".join(b.text for b in follow.content if b.type == "text")
    assert "rain" in text and "noon" in text and follow.stop_reason == "end_turn"


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "gpt-4o-mini", "gemini-2.5-flash"])
def test_anthropic_face_streams_tool_use_blocks(claude, model):
    with claude.messages.stream(model=model, max_tokens=200, tools=ANTHROPIC_TOOLS,
                                tool_choice={"type": "any"},
                                messages=[{"role": "user", "content": "[[tools]]"}]) as stream:
        final = stream.get_final_message()
    uses = [b for b in final.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == [("weather", {"city": "Seoul"}),
                                                 ("clock", {"zone": "UTC"})]
    assert final.stop_reason == "tool_use"


def test_anthropic_tool_choice_reaches_other_vendors(claude, fakes):
    claude.messages.create(model="gpt-4o-mini", max_tokens=50, tools=ANTHROPIC_TOOLS,
                           tool_choice={"type": "tool", "name": "clock",
                                        "disable_parallel_tool_use": True},
                           messages=[{"role": "user", "content": "x"}])
    sent = fakes.requests("openai")[-1]["json"]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "clock"}}
    assert sent["parallel_tool_calls"] is False


# -- the Google face -----------------------------------------------------------------------

def _gemini_tools() -> list[types.Tool]:
    return [types.Tool(function_declarations=[
        types.FunctionDeclaration(name="weather", description="Weather.", parameters=types.Schema(
            type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"])),
        types.FunctionDeclaration(name="clock", parameters_json_schema=CLOCK["function"][
            "parameters"])])]


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gpt-4o-mini", "claude-haiku-4-5"])
def test_google_face_function_calls_round_trip(gem, fakes, model):
    config = types.GenerateContentConfig(
        tools=_gemini_tools(),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    reply = gem.models.generate_content(model=model, contents="weather, clock [[tools]]",
                                        config=config)
    calls = reply.function_calls
    assert [(c.name, c.args) for c in calls] == [("weather", {"city": "Seoul"}),
                                                 ("clock", {"zone": "UTC"})]
    if model == "gpt-4o-mini":
        sent = fakes.requests("openai")[-1]["json"]
        assert sent["tools"][0]["function"]["parameters"] == {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    contents = [
        types.Content(role="user", parts=[types.Part(text="weather, clock [[tools]]")]),
        reply.candidates[0].content,
        types.Content(role="user", parts=[
            types.Part.from_function_response(name="weather", response={"sky": "clear"}),
            types.Part.from_function_response(name="clock", response={"time": "10:00"})]),
    ]
    answer = gem.models.generate_content(model=model, contents=contents, config=config)
    assert "clear" in answer.text and "10:00" in answer.text
    if model == "claude-haiku-4-5":
        sent = fakes.requests("anthropic")[-1]["json"]
        results = sent["messages"][2]["content"]
        uses = [b for b in sent["messages"][1]["content"] if b["type"] == "tool_use"]
        assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
        assert json.loads(results[0]["content"]) == {"sky": "clear"}


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gpt-4o-mini", "mock/echo"])
def test_google_face_streams_function_calls(gem, model):
    config = types.GenerateContentConfig(
        tools=_gemini_tools(), tool_config=types.ToolConfig(
            function_calling_config=types.FunctionCallingConfig(mode="ANY")),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    prompt = "weather clock [[tools]]"
    calls = [c for chunk in gem.models.generate_content_stream(model=model, contents=prompt,
                                                               config=config)
             for c in chunk.function_calls or []]
    assert [c.name for c in calls] == ["weather", "clock"]


# -- malformed tool definitions: 400 invalid_tool_schema on every face ------------------------

BAD_OPENAI = [
    ([{"type": "function", "function": {"name": "has space"}}], "tools[0].function.name"),
    ([{"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}],
     "tools[0].function.parameters.type"),
    ([{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"type": "banana"}}}}}],
     "tools[0].function.parameters"),
    ([{"type": "function"}], "tools[0].function"),
    ([{"type": "retrieval"}], "tools[0].type"),
]


@pytest.mark.parametrize("tools,param", BAD_OPENAI)
@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-haiku-4-5", "mock/echo"])
def test_openai_face_refuses_malformed_tools(oai, fakes, tools, param, model, api):
    before = len(fakes.requests("openai")) + len(fakes.requests("anthropic"))
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(model=model, tools=tools,
                                    messages=[{"role": "user", "content": "x"}])
    error = refused.value.body
    assert error["code"] == "invalid_tool_schema" and error["param"] == param
    assert "tool" in error["message"]
    assert len(fakes.requests("openai")) + len(fakes.requests("anthropic")) == before
    row = api().last_run()
    assert (row["status"], row["error_code"]) == ("error", "invalid_tool_schema")


def test_tool_choice_must_name_an_offered_tool(oai):
    with pytest.raises(openai.BadRequestError) as refused:
        oai.chat.completions.create(model="mock/echo", tools=[WEATHER], messages=[
            {"role": "user", "content": "x"}],
            tool_choice={"type": "function", "function": {"name": "nope"}})
    assert refused.value.body["code"] == "invalid_tool_schema"
    assert refused.value.body["param"] == "tool_choice"


@pytest.mark.parametrize("model", ["claude-haiku-4-5", "mock/echo"])
def test_anthropic_face_refuses_malformed_tools(claude, model):
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(model=model, max_tokens=10, messages=[
            {"role": "user", "content": "x"}], tools=[{"name": "f", "input_schema": {
                "type": "object", "required": "x"}}])
    assert refused.value.body["error"]["code"] == "invalid_tool_schema"
    assert "'f'" in refused.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(model=model, max_tokens=10, messages=[
            {"role": "user", "content": "x"}], tools=[{"name": "f"}])
    assert "input_schema" in refused.value.body["error"]["message"]


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "mock/echo"])
def test_google_face_refuses_malformed_tools(gem, model):
    config = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[
        types.FunctionDeclaration(name="9lives", parameters=types.Schema(type="OBJECT"))])])
    with pytest.raises(errors.ClientError) as refused:
        gem.models.generate_content(model=model, contents="x", config=config)
    assert refused.value.code == 400 and "9lives" in refused.value.message
    assert refused.value.details["error"]["details"][0]["metadata"]["code"] == \
        "invalid_tool_schema"
