"""Compare: one prompt to several models at once, side by side, with each one's numbers."""

from __future__ import annotations

import pytest
from classroom import Compare, GatewayError


def test_one_prompt_goes_to_every_chosen_model(make_client, recorder):
    cmp = Compare(client=make_client(transport=recorder), models=["mock/echo", "mock/lorem"],
                  prompt="Explain tokens.", max_tokens=20)
    assert cmp.models == ["mock/echo", "mock/lorem"]

    cmp.run_button.click()
    assert cmp.wait(60)

    assert [r["model"] for r in cmp.results] == ["mock/echo", "mock/lorem"]
    assert cmp.results[0]["text"] == "Explain tokens."
    assert cmp.results[1]["completion_tokens"] <= 20
    sent = {b["model"]: b for b in recorder.bodies("/chat/completions")}
    assert set(sent) == {"mock/echo", "mock/lorem"}
    assert all(b["max_tokens"] == 20 for b in sent.values())
    cards = [c.value for c in cmp.columns.children]
    assert "mock/echo" in cards[0] and "mock/lorem" in cards[1]
    assert all("tokens" in c and "free" in c for c in cards)
    assert sum("(fastest)" in c for c in cards) == 1


def test_a_failing_model_is_explained_in_its_column(make_client):
    cmp = Compare(client=make_client(), models=["mock/echo", "no-such-model"], prompt="hi")
    results = cmp.run()
    assert results[0]["text"] == "hi"
    assert results[1]["error_code"] == "model_not_found"
    assert "does not know a model" in cmp.columns.children[1].value
    assert "model_not_found" in cmp.error_box.message.value  # shown, with what to do


def test_nothing_chosen_or_all_failing(make_client):
    cmp = Compare(client=make_client(), models=["no-such-model"], prompt="hi")
    with pytest.raises(GatewayError):
        cmp.run()
    cmp.models = []
    cmp.model_picker.value = ()
    with pytest.raises(ValueError, match="Pick at least one model"):
        cmp.run()
