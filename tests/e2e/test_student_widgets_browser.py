"""A student in the browser: lesson 01's Chat widget streams a reply; a Playground runs
three iterations side by side. Screenshots go to test-artifacts/."""

from __future__ import annotations

import re

import pytest

from tests.support.lab_ui import sign_in
from tests.support.procs import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

LONG_MESSAGE = " ".join(f"word{i}" for i in range(600))  # ~1.5 s of streaming at 400 tok/s
PLAYGROUND = 'from classroom import Playground\nPlayground(model="mock/lorem", ' \
    'prompt="Write a haiku about the sea.", iterations=3)'


@pytest.fixture
def page(hub, student, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    sign_in(page, hub, student.name, student.password)
    page.wait_for_url(f"**/user/{student.name}/lab**", timeout=90_000)
    try:
        yield page
    finally:
        context.close()


def open_lesson(page, hub, student):
    page.goto(f"{hub.url}/user/{student.name}/lab/tree/lessons/01_first_chat.ipynb",
              wait_until="domcontentloaded")
    page.locator(".jp-Notebook").first.wait_for(timeout=90_000)
    # The kernel is ready when the status says Idle.
    page.wait_for_function(
        "() => !!document.querySelector('.jp-Notebook-ExecutionIndicator[data-status=\"idle\"]')"
        " || /Idle/.test(document.body.innerText)", timeout=90_000)


def run_cell(page, cell):
    cell.scroll_into_view_if_needed()
    cell.locator(".jp-InputArea-editor").click()
    page.keyboard.press("Shift+Enter")


def test_chat_widget_streams_a_reply_and_playground_shows_three_results(page, hub, student):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        scenario(page, hub, student)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "student_widgets_failure.png"))
        raise


def scenario(page, hub, student):
    open_lesson(page, hub, student)

    chat_cell = page.locator(".jp-CodeCell").filter(has_text="from classroom import Chat")
    run_cell(page, chat_cell)
    box = chat_cell.locator("textarea[placeholder='Type your message, then press Send']")
    box.wait_for(timeout=60_000)
    assert "Hanbit High School" in chat_cell.locator(".classroom-header").inner_text()
    box.fill("Hello from the browser! " + LONG_MESSAGE)
    chat_cell.locator("button.widget-button", has_text="Send").click()

    # Streamed: part of the reply is on screen, with the cursor, before the whole of it.
    chat_cell.locator(".classroom-assistant", has_text="▍").wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "student_chat_streaming.png"))
    reply = chat_cell.locator(".classroom-turn.classroom-assistant .classroom-meta")
    reply.wait_for(timeout=60_000)
    assert re.search(r"mock/echo · \d+ prompt \+ \d+ completion", reply.inner_text())
    assert "word599" in chat_cell.locator(".classroom-turn.classroom-assistant").inner_text()
    page.screenshot(path=str(ARTIFACTS / "student_chat_reply.png"))

    # A Playground in a new cell below: three iterations at once, side by side.
    chat_cell.locator(".jp-InputPrompt").first.click()  # command mode, the chat cell selected
    page.keyboard.press("b")  # a new cell below
    page.keyboard.press("Enter")  # edit it
    page.keyboard.insert_text(PLAYGROUND)
    page.keyboard.press("Shift+Enter")
    playground = page.locator(".jp-CodeCell").filter(has_text="from classroom import Playground")
    run = playground.locator("button.widget-button", has_text=re.compile(r"^\s*Run\s*$"))
    run.wait_for(timeout=60_000)
    run.click()
    results = playground.locator(".classroom-result")
    page.wait_for_function(
        "() => document.querySelectorAll('.classroom-result').length === 3", timeout=60_000)
    assert results.count() == 3
    for i in range(3):
        assert "tokens" in results.nth(i).inner_text()
    assert "3 of 3 answers" in playground.locator(".classroom-stats").first.inner_text()
    playground.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "student_playground.png"))
