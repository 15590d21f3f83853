"""The mock models' tool rule (gateway/providers/mock_tools.py): the tool the prompt names,
arguments from the prompt and the schema, the same calls every time; then an answer from
the results. Through the OpenAI face with the official SDK, streamed and not."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from openai import OpenAI

from gateway.edge.schemas import ChatCompletionRequest
from gateway.providers.mock_tools import arguments_for, planned_calls

CALC = {"type": "function", "function": {"name": "calculator", "parameters": {
    "type": "object", "properties": {"expression": {"type": "string"}},
    "required": ["expression"]}}}
CONVERT = {"type": "function", "function": {"name": "convert_units", "parameters": {
    "type": "object", "properties": {"value": {"type": "number"},
                                     "from_unit": {"type": "string"},
                                     "to_unit": {"type": "string"}},
    "required": ["value", "from_unit", "to_unit"]}}}
TIME = {"type": "function", "function": {"name": "current_time", "parameters": {
    "type": "object", "properties": {"timezone": {"type": "string",
                                                  "enum": ["UTC", "Asia/Seoul"]}}}}}


def request(prompt: str, tools: list, **extra) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({
        "model": "mock/echo", "messages": [{"role": "user", "content": prompt}],
        "tools": tools, **extra})


def test_the_named_tool_is_called_with_arguments_from_the_prompt():
    calls = planned_calls(request("Use the calculator: 2 * (3 + 4)", [CALC, TIME]))
    assert [(c.name, json.loads(c.arguments)) for c in calls] == [
        ("calculator", {"expression": "2 * (3 + 4)"})]
    quoted = planned_calls(request('calculator "sqrt(16)" please', [CALC]))
    assert json.loads(quoted[0].arguments) == {"expression": "sqrt(16)"}
    named = planned_calls(request("convert_units value=5 from_unit=km to_unit=mi", [CONVERT]))
    assert json.loads(named[0].arguments) == {"value": 5, "from_unit": "km", "to_unit": "mi"}
    spaced = planned_calls(request("What is the current time in Asia/Seoul?", [TIME]))
    assert json.loads(spaced[0].arguments) == {"timezone": "Asia/Seoul"}


def test_parallel_calls_in_prompt_order_and_the_switches():
    both = planned_calls(request("current time, then calculator: 1+1", [CALC, TIME]))
    assert [c.name for c in both] == ["current_time", "calculator"]
    one = planned_calls(request("current time, then calculator: 1+1", [CALC, TIME],
                                parallel_tool_calls=False))
    assert [c.name for c in one] == ["current_time"]
    assert planned_calls(request("calculator 1+1", [CALC], tool_choice="none")) == []
    assert planned_calls(request("hello there", [CALC])) == []
    assert [c.name for c in planned_calls(request("hello", [CALC, TIME],
                                                  tool_choice="required"))] == ["calculator"]
    forced = planned_calls(request("calculator 1+1", [CALC, TIME], tool_choice={
        "type": "function", "function": {"name": "current_time"}}))
    assert [c.name for c in forced] == ["current_time"]


def test_numbers_fill_numeric_arguments_in_order():
    assert arguments_for("convert 3.5 from kg", "convert_units",
                         CONVERT["function"]["parameters"])["value"] == 3.5


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=80))
def test_the_rule_is_deterministic_and_gives_json_objects(prompt):
    first = planned_calls(request(prompt + " calculator", [CALC, CONVERT, TIME]))
    again = planned_calls(request(prompt + " calculator", [CALC, CONVERT, TIME]))
    assert [(c.id, c.name, c.arguments) for c in first] == [
        (c.id, c.name, c.arguments) for c in again]
    assert "calculator" in [c.name for c in first]
    for call in first:
        assert isinstance(json.loads(call.arguments), dict)


def test_mock_calls_and_answers_through_the_sdk(vendor_gateway, tokens, api):
    client = OpenAI(base_url=vendor_gateway.url + "/v1", api_key=tokens["student_a"],
                    max_retries=0)
    messages = [{"role": "user", "content": "calculator: 6 * 7"}]
    reply = client.chat.completions.create(model="mock/echo", messages=messages, tools=[CALC])
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "calculator", {"expression": "6 * 7"})
    row = api().last_run()
    assert row["status"] == "ok" and row["completion_tokens"] > 0
    again = client.chat.completions.create(model="mock/echo", messages=messages, tools=[CALC])
    assert again.choices[0].message.tool_calls[0].id == call.id  # deterministic
    streamed = client.chat.completions.create(model="mock/lorem", messages=messages,
                                              tools=[CALC], stream=True)
    arguments, names = "", []
    for chunk in streamed:
        for delta in chunk.choices[0].delta.tool_calls or [] if chunk.choices else []:
            names += [delta.function.name] if delta.function and delta.function.name else []
            arguments += (delta.function.arguments or "") if delta.function else ""
    assert names == ["calculator"] and json.loads(arguments) == {"expression": "6 * 7"}
    messages += [reply.choices[0].message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "42"}]
    answer = client.chat.completions.create(model="mock/echo", messages=messages, tools=[CALC])
    assert answer.choices[0].message.content == "The tool calculator said: 42"
    assert answer.choices[0].finish_reason == "stop"
