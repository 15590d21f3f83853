"""The Playground against the real gateway: parameters, presets, N iterations, code, export."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys

import pytest
from classroom import GatewayError, Playground


@pytest.fixture
def playground(make_client, recorder) -> Playground:
    return Playground(client=make_client(transport=recorder), model="mock/lorem",
                      prompt="Write a haiku about the sea.", system="You are a poet.")


def test_sliders_follow_the_provider(playground):
    shown = {n for n, s in playground.sliders.items() if s.layout.display != "none"}
    assert shown == {"temperature", "top_p", "top_k", "max_tokens", "presence_penalty",
                     "frequency_penalty"}  # the practice models take every parameter
    playground.model = "claude-haiku-4-5"
    shown = {n for n, s in playground.sliders.items() if s.layout.display != "none"}
    assert shown == {"temperature", "top_p", "top_k", "max_tokens"}
    assert playground.sliders["temperature"].max == 1.0
    playground.model = "gpt-4o-mini"
    assert set(playground.parameters) == {"temperature", "top_p", "max_tokens",
                                          "presence_penalty", "frequency_penalty"}
    playground.model = "gemini-2.5-flash"
    assert "top_k" in playground.parameters and "presence_penalty" in playground.parameters


def test_presets_set_the_sliders(playground):
    playground.apply_preset("precise")
    assert playground.parameters["temperature"] == 0.2
    assert playground.parameters["top_k"] == 20
    playground.preset_buttons.value = "creative"
    assert playground.parameters["temperature"] == 1.2


def test_run_button_runs_three_iterations_at_once_with_the_parameters(playground, recorder):
    playground.set(temperature=0.3, max_tokens=12, top_k=5)
    playground.iterations_slider.value = 3

    playground.run_button.click()
    assert playground.wait(60)

    assert playground.last_error is None
    assert len(playground.results) == 3
    assert len(playground.results_box.children) == 3
    sent = recorder.bodies("/chat/completions")
    assert len(sent) == 3
    for body in sent:
        assert body["model"] == "mock/lorem"
        assert body["temperature"] == 0.3 and body["max_tokens"] == 12 and body["top_k"] == 5
        assert body["messages"][0] == {"role": "system", "content": "You are a poet."}
    for result in playground.results:
        assert result["completion_tokens"] <= 12
        assert result["cost_usd"] == 0.0 and result["latency_s"] >= 0
    card = playground.results_box.children[1].value
    assert "tokens" in card and "free" in card and " s" in card
    assert "alike" in playground.summary.value


def test_differences_from_the_first_answer_are_highlighted(make_client):
    pg = Playground(client=make_client(), model="mock/echo", prompt="same words")
    pg.run(iterations=2)
    assert "<mark" not in pg.results_box.children[1].value  # echo answers alike
    assert "100% alike" in pg.summary.value

    from classroom._export import highlight_differences

    marked = highlight_differences("the cat sat", "the dog sat")
    assert marked == 'the <mark class="classroom-diff">dog</mark> sat'


def test_export_as_json_markdown_and_csv(playground, tmp_path):
    with pytest.raises(ValueError, match="press Run first"):
        playground.export("json")
    playground.run(iterations=2)
    record = json.loads(playground.export("json"))
    assert record["model"] == "mock/lorem" and record["prompt"].startswith("Write a haiku")
    assert len(record["results"]) == 2 and record["parameters"]["temperature"] == 1.0
    rows = list(csv.DictReader(io.StringIO(playground.export("csv"))))
    assert [r["iteration"] for r in rows] == ["1", "2"] and rows[0]["model"] == "mock/lorem"
    markdown = playground.export("markdown")
    assert markdown.startswith("# Playground run: mock/lorem")
    assert "### Iteration 2" in markdown and "| temperature | 1.0 |" in markdown

    path = playground.save("csv", tmp_path)
    assert path.read_text() == playground.export("csv")
    os.chdir(tmp_path)
    playground.export_format.value = "markdown"
    playground.export_button.click()
    assert "download" in playground.export_link.value
    assert "data:text/markdown;base64," in playground.export_link.value
    assert playground.last_export and playground.last_export.suffix == ".md"


def test_show_code_gives_the_call_in_three_languages(playground):
    playground.code_button.click()
    assert "client.chat.completions.create(" in playground.code_view.value
    playground.language.value = "curl"
    assert "$OPENAI_BASE_URL/chat/completions" in playground.code_view.value
    playground.model = "claude-haiku-4-5"
    assert "anthropic.Anthropic()" in playground.code("python")
    assert '"@anthropic-ai/sdk"' in playground.code("javascript")
    assert "x-api-key: $ANTHROPIC_API_KEY" in playground.code("curl")
    playground.model = "gemini-2.5-flash"
    assert "types.GenerateContentConfig(" in playground.code("python")
    assert "max_output_tokens=256" in playground.code("python")
    assert ":generateContent" in playground.code("curl") and "topK" in playground.code("curl")
    for language in ("python",):
        compile(playground.code(language), "<generated>", "exec")
    assert playground.client.base_url not in playground.code("curl")  # env vars, no secrets


def test_the_python_code_runs_as_shown(playground, gateway_server, tmp_path):
    script = tmp_path / "snippet.py"
    playground.set(max_tokens=8)
    script.write_text(playground.code("python"))
    env = {**os.environ, "OPENAI_BASE_URL": gateway_server.url + "/v1",
           "OPENAI_API_KEY": gateway_server.tokens["student_a"]}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "completion_tokens=" in done.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_curl_command_runs_as_shown(playground, gateway_server):
    env = {**os.environ, "OPENAI_BASE_URL": gateway_server.url + "/v1",
           "OPENAI_API_KEY": gateway_server.tokens["student_a"]}
    done = subprocess.run(["bash", "-c", playground.code("curl")], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["object"] == "chat.completion"


def test_an_unknown_model_fails_every_iteration_and_is_explained(make_client):
    pg = Playground(client=make_client(), model="no-such-model", prompt="hi")
    with pytest.raises(GatewayError) as caught:
        pg.run(iterations=2)
    assert caught.value.code == "model_not_found"
    assert "does not know a model called 'no-such-model'" in pg.error_box.text
    assert "What to do:" in pg.error_box.message.value
    assert all(r["error_code"] == "model_not_found" for r in pg.results)
    assert not pg.run_button.disabled


def test_an_empty_prompt_is_refused_before_calling(make_client, recorder):
    pg = Playground(client=make_client(transport=recorder), model="mock/echo")
    pg.run_button.click()
    assert pg.wait(30)
    assert pg.error_box.text == "Write a prompt first, then press Run."
    assert not recorder.bodies("/chat/completions")


@pytest.mark.parametrize(("model", "face"), [("claude-haiku-4-5", "/anthropic/"),
                                             ("gemini-2.5-flash", "/google/")])
def test_the_native_sdk_code_runs_as_shown(playground, gateway_server, gateway_paths, tmp_path,
                                           model, face):
    if not any(path.startswith(face) for path in gateway_paths):
        pytest.fail(f"the gateway has no {face} face")
    playground.model = model
    playground.set(max_tokens=8, temperature=0.5)
    # The same code, pointed at the practice model so that it runs without provider keys.
    code = playground.code("python").replace(repr(model), repr("mock/echo"))
    script = tmp_path / "snippet.py"
    script.write_text(code)
    token = gateway_server.tokens["student_a"]
    env = {**os.environ, "ANTHROPIC_BASE_URL": gateway_server.url + "/anthropic",
           "ANTHROPIC_API_KEY": token, "GOOGLE_GEMINI_BASE_URL": gateway_server.url + "/google",
           "GEMINI_API_KEY": token}
    env.pop("GOOGLE_API_KEY", None)
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Write a haiku" in done.stdout  # mock/echo answers with the prompt
