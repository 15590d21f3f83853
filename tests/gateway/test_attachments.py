"""Files on a session's message: images as image input, text and PDF as extracted text,
kept as artifacts with filename and MIME type, counted in the prompt, limits in words."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

from tests.gateway.test_sessions import auth, new_session, runs_of, send

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pdf_with_text(text: str) -> bytes:
    """A one-page PDF whose content stream draws ``text`` (pypdf reads it back)."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=300, height=200)
    font = DictionaryObject({NameObject("/Type"): NameObject("/Font"),
                             NameObject("/Subtype"): NameObject("/Type1"),
                             NameObject("/BaseFont"): NameObject("/Helvetica")})
    page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): DictionaryObject(
        {NameObject("/F1"): writer._add_object(font)})})
    stream = DecodedStreamObject()
    stream.set_data(f"BT /F1 12 Tf 20 100 Td ({text}) Tj ET".encode())
    page[NameObject("/Contents")] = writer._add_object(stream)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def attach(filename: str, mime: str, data: bytes) -> dict[str, Any]:
    return {"filename": filename, "mime": mime, "data": b64(data)}


def test_text_and_pdf_are_sent_as_text_and_kept_as_artifacts(gateway_client, tokens):
    s = new_session(gateway_client, tokens, system_prompt=None)
    reply = send(gateway_client, tokens, s["id"], "Summarise these.", attachments=[
        attach("notes.txt", "text/plain", b"Atoms are small."),
        attach("paper.pdf", "application/pdf", pdf_with_text("Molecules are atoms bonded")),
    ])
    assert reply.status_code == 200, reply.text
    body = reply.json()
    sent = body["assistant_message"]["context"]["messages"][-1]["content"]
    assert sent[0] == {"type": "text", "text": "Summarise these."}
    assert sent[1] == {"type": "text", "text": "Attached file notes.txt:\nAtoms are small."}
    assert sent[2]["text"].startswith("Attached file paper.pdf:\nMolecules are atoms bonded")
    files = body["user_message"]["attachments"]
    assert [(f["filename"], f["mime"]) for f in files] == [
        ("notes.txt", "text/plain"), ("paper.pdf", "application/pdf")]
    assert files[1]["pages"] == 1 and files[1]["words"] == 4 and "text" not in files[1]
    # Kept as artifacts of that user, linked to the message, with the original bytes.
    art = gateway_client.get(f"/api/artifacts/{files[0]['artifact_id']}", headers=auth(tokens))
    assert art.status_code == 200 and art.content == b"Atoms are small."
    assert gateway_client.get(f"/api/artifacts/{files[0]['artifact_id']}",
                              headers=auth(tokens, "student_a2")).status_code == 404
    # The file's words are in the prompt the model counted (the mock counts words).
    plain = send(gateway_client, tokens, new_session(gateway_client, tokens,
                                                     system_prompt=None)["id"],
                 "Summarise these.").json()
    assert body["assistant_message"]["prompt_tokens"] >= \
        plain["assistant_message"]["prompt_tokens"] + 7
    # A later turn sends the document's text again.
    later = send(gateway_client, tokens, s["id"], "And now?").json()
    earlier = later["assistant_message"]["context"]["messages"][0]["content"]
    assert "Attached file notes.txt:\nAtoms are small." in earlier


def test_an_image_goes_as_image_input_and_is_counted(gateway_client, tokens):
    s = new_session(gateway_client, tokens)
    reply = send(gateway_client, tokens, s["id"], "What is this?",
                 attachments=[attach("dot.png", "image/png", PNG)])
    assert reply.status_code == 200, reply.text
    body = reply.json()
    part = body["assistant_message"]["context"]["messages"][-1]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": "[image]"}}  # bytes not copied
    [kept] = body["user_message"]["attachments"]
    art = gateway_client.get(f"/api/artifacts/{kept['artifact_id']}", headers=auth(tokens))
    assert art.content == PNG and art.headers["content-type"] == "image/png"
    run = runs_of(gateway_client)[-1]
    assert run["status"] == "ok" and run["id"] == body["assistant_message"]["run_id"]
    later = send(gateway_client, tokens, s["id"], "again").json()
    assert "[image: dot.png]" in later["assistant_message"]["context"]["messages"][1]["content"]


@pytest.mark.parametrize(("file", "status", "words"), [
    (attach("a.exe", "application/x-msdownload", b"MZ"), 400, "cannot be attached"),
    ({"filename": "x.txt", "mime": "text/plain", "data": "not base64!"}, 400, "base64"),
    (attach("scan.pdf", "application/pdf", b"%PDF-1.4 nothing"), 400, "could not be read"),
    (attach("bin.txt", "text/plain", b"\xff\xfe\xfa"), 400, "not UTF-8"),
    (attach("long.txt", "text/plain", b"word " * 20_001), 413, "20000 words at most"),
    (attach("big.png", "image/png", b"\x89PNG" + b"0" * (5 * 1024 * 1024)), 413, "5 MB"),
])
def test_bad_files_are_refused_in_words_and_nothing_is_stored(gateway_client, tokens, file,
                                                              status, words):
    s = new_session(gateway_client, tokens)
    response = send(gateway_client, tokens, s["id"], "look", attachments=[file])
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["param"].startswith("attachments[0]")
    assert gateway_client.get(f"/api/conversations/{s['id']}", headers=auth(tokens)
                              ).json()["messages"] == []


def test_too_many_files_and_images_to_a_text_only_model(gateway_client, tokens):
    s = new_session(gateway_client, tokens)
    five = [attach(f"{i}.txt", "text/plain", b"x") for i in range(5)]
    response = send(gateway_client, tokens, s["id"], "look", attachments=five)
    assert response.status_code == 400 and "at most 4 files" in response.json()["error"]["message"]


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filename=st.one_of(st.text(max_size=30), st.just("<script>x</script>.txt"),
                          st.just("資料.txt")),
       mime=st.one_of(st.sampled_from(["text/plain", "image/png", "application/pdf"]),
                      st.text(max_size=20)),
       data=st.one_of(st.binary(max_size=64).map(b64), st.text(max_size=20)))
def test_odd_attachments_are_a_clear_4xx_or_stored_exactly(gateway_client, tokens, filename,
                                                           mime, data):
    s = new_session(gateway_client, tokens)
    response = send(gateway_client, tokens, s["id"], "look", attachments=[
        {"filename": filename, "mime": mime, "data": data}])
    assert response.status_code in (200, 400, 413, 422), response.text
    if response.status_code == 200:
        [kept] = response.json()["user_message"]["attachments"]
        assert kept["filename"] == filename and kept["mime"] == mime.lower()
    else:
        assert response.json()["error"]["message"]
