"""The mock's media through the gateway, as widgets use them: embeddings, images (PNG),
speech (WAV), voices, video and Midjourney-style jobs with rising progress, the gallery,
and who may fetch an artifact."""

from __future__ import annotations

import base64
import io
import math
import struct
import wave
import zlib

import pytest
from fastapi.testclient import TestClient

from gateway.edge.app import create_asgi
from tests.support.procs import wait_until


@pytest.fixture
def client(gateway_settings):
    settings = gateway_settings.model_copy(update={
        "mock_job_seconds": 0.4, "job_poll_seconds": 0.02, "mock_media_ms": 0})
    with TestClient(create_asgi(settings)) as client:
        yield client


def auth(tokens, who="student_a"):
    return {"Authorization": f"Bearer {tokens[who]}"}


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", data[16:24])
    idat = data.index(b"IDAT")
    length = struct.unpack(">I", data[idat - 4:idat])[0]
    raw = zlib.decompress(data[idat + 4:idat + 4 + length])
    assert len(raw) == height * (1 + 3 * width)  # every row present, RGB
    return width, height


def gif_frames(data: bytes) -> list[bytes]:
    """Decode an animated GIF's frames (LZW) — enough to prove the file is real."""
    assert data[:6] == b"GIF89a"
    width, height, flags = struct.unpack("<HHB", data[6:11])
    pos = 13 + (3 * 2 ** ((flags & 7) + 1) if flags & 0x80 else 0)
    frames = []
    while data[pos] != 0x3B:
        if data[pos] == 0x21:  # extension: skip its sub-blocks
            pos += 2
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
            continue
        assert data[pos] == 0x2C
        pos += 10
        min_size = data[pos]
        pos += 1
        stream = bytearray()
        while data[pos]:
            stream += data[pos + 1:pos + 1 + data[pos]]
            pos += data[pos] + 1
        pos += 1
        frames.append(lzw_decode(bytes(stream), min_size))
        assert len(frames[-1]) == width * height
    return frames


def lzw_decode(stream: bytes, min_size: int) -> bytes:
    clear, end = 1 << min_size, (1 << min_size) + 1
    size, bits, nbits, out = min_size + 1, 0, 0, bytearray()
    table: list[bytes] = []
    previous: bytes | None = None
    for byte in stream:
        bits |= byte << nbits
        nbits += 8
        while nbits >= size:
            code, bits, nbits = bits & ((1 << size) - 1), bits >> size, nbits - size
            if code == clear:
                table = [bytes([i]) for i in range(clear)] + [b"", b""]
                size, previous = min_size + 1, None
                continue
            if code == end:
                return bytes(out)
            entry = table[code] if code < len(table) else previous + previous[:1]
            out += entry
            if previous is not None:
                table.append(previous + entry[:1])
                if len(table) == 1 << size and size < 12:
                    size += 1
            previous = entry
    return bytes(out)


def test_mock_embeddings_are_unit_vectors_near_for_similar_texts(client, tokens):
    response = client.post("/v1/embeddings", headers=auth(tokens), json={
        "model": "mock/embed", "input": ["the cat sat on the mat", "a cat sat on a mat",
                                         "quantum chromodynamics lecture notes"]})
    assert response.status_code == 200
    vectors = [d["embedding"] for d in response.json()["data"]]
    assert all(len(v) == 64 and math.isclose(sum(x * x for x in v), 1) for v in vectors)
    near = sum(a * b for a, b in zip(vectors[0], vectors[1], strict=True))
    far = sum(a * b for a, b in zip(vectors[0], vectors[2], strict=True))
    assert near > 0.5 > far
    again = client.post("/v1/embeddings", headers=auth(tokens), json={
        "model": "mock/embed", "input": "the cat sat on the mat", "encoding_format": "base64",
        "dimensions": 16}).json()["data"][0]["embedding"]
    assert len(base64.b64decode(again)) == 16 * 4
    row = client.get("/api/history", headers=auth(tokens)).json()["items"][0]
    assert (row["kind"], row["model"], row["cost_micro_usd"]) == ("embedding", "mock/embed", 0)


def test_mock_image_is_a_real_png_in_the_gallery(client, tokens):
    response = client.post("/v1/images/generations", headers=auth(tokens), json={
        "model": "mock/image", "prompt": "a lighthouse", "size": "320x200", "n": 2,
        "response_format": "b64_json"})
    assert response.status_code == 200, response.text
    body = response.json()
    first = base64.b64decode(body["data"][0]["b64_json"])
    assert png_size(first) == (320, 200)
    assert body["data"][0]["b64_json"] != body["data"][1]["b64_json"]
    same = client.post("/v1/images/generations", headers=auth(tokens), json={
        "model": "mock/image", "prompt": "a lighthouse", "size": "320x200",
        "response_format": "url"}).json()
    url = same["data"][0]["url"]
    assert url == f"http://testserver/api/artifacts/{same['artifacts'][0]}"
    fetched = client.get(url, headers=auth(tokens))
    assert fetched.headers["content-type"] == "image/png" and fetched.content == first
    gallery = client.get("/api/artifacts", headers=auth(tokens), params={"kind": "image"}).json()
    items = gallery["items"]
    assert [i["id"] for i in items][:1] == same["artifacts"]  # newest first
    assert len(items) == 3 and {i["prompt"] for i in items} == {"a lighthouse"}
    assert items[0]["run_id"] == same["run_id"] and items[0]["mime"] == "image/png"
    row = client.get(f"/api/history/{same['run_id']}", headers=auth(tokens)).json()
    assert (row["kind"], row["status"], row["cost_micro_usd"]) == ("image", "ok", 0)


def test_mock_image_edit_takes_multipart(client, tokens):
    source = client.post("/v1/images/generations", headers=auth(tokens), json={
        "model": "mock/image", "prompt": "a cat", "size": "64x64"}).json()
    image = base64.b64decode(source["data"][0]["b64_json"])
    edited = client.post("/v1/images/edits", headers=auth(tokens), data={
        "model": "mock/image", "prompt": "make it blue", "size": "64x64",
        "session_id": source["session_id"]}, files={"image": ("cat.png", image, "image/png")})
    assert edited.status_code == 200, edited.text
    out = base64.b64decode(edited.json()["data"][0]["b64_json"])
    assert png_size(out) == (64, 64) and out != image
    assert edited.json()["session_id"] == source["session_id"]
    session = client.get("/api/artifacts", headers=auth(tokens),
                         params={"session_id": source["session_id"]}).json()["items"]
    assert [s["meta"]["edit"] for s in session] == [True, False]
    refused = client.post("/v1/images/edits", headers=auth(tokens),
                          data={"model": "mock/image", "prompt": "x"},
                          files={"other": ("x.txt", b"x", "text/plain")})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "image"


@pytest.mark.parametrize(("size", "field"), [("4096x4096", "size"), ("big", "size")])
def test_bad_image_size_names_the_field(client, tokens, size, field):
    response = client.post("/v1/images/generations", headers=auth(tokens), json={
        "model": "mock/image", "prompt": "x", "size": size})
    assert response.status_code == 400 and response.json()["error"]["param"] == field


def test_mock_speech_is_a_wav_as_long_as_the_text(client, tokens):
    short = client.post("/v1/audio/speech", headers=auth(tokens), json={
        "model": "mock/speech", "input": "Hi there", "voice": "alto"})
    long = client.post("/v1/audio/speech", headers=auth(tokens), json={
        "model": "mock/speech", "input": "Hi there, this is a much longer sentence to say.",
        "voice": "alto"})
    assert short.status_code == 200 and short.headers["content-type"] == "audio/wav"

    def seconds(data: bytes) -> float:
        with wave.open(io.BytesIO(data)) as audio:
            return audio.getnframes() / audio.getframerate()

    assert 0.1 < seconds(short.content) < seconds(long.content)
    artifact = long.headers["x-classroom-artifact-id"]
    assert client.get(f"/api/artifacts/{artifact}", headers=auth(tokens)).content == long.content
    row = client.get("/api/history", headers=auth(tokens)).json()["items"][0]
    assert (row["kind"], row["model"], row["cost_status"]) == ("speech", "mock/speech", "priced")


def test_voices(client, tokens):
    mock = client.get("/api/voices", headers=auth(tokens), params={"provider": "mock"}).json()
    assert {"id": "alto", "name": "Alto", "provider": "mock"} in mock["voices"]
    openai = client.get("/api/voices", headers=auth(tokens), params={"provider": "openai"})
    assert "nova" in {v["id"] for v in openai.json()["voices"]}
    eleven = client.get("/api/voices", headers=auth(tokens), params={"provider": "elevenlabs"})
    assert eleven.status_code == 503 and eleven.json()["error"]["code"] == "no_key_available"


def run_job(client, tokens, body, who="student_a"):
    created = client.post("/api/jobs", headers=auth(tokens, who), json=body)
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["status"] in ("queued", "running") and job["progress"] < 1
    seen = [job["progress"]]

    def done() -> bool:
        current = client.get(f"/api/jobs/{job['id']}", headers=auth(tokens, who)).json()
        seen.append(current["progress"])
        job.update(current)
        return current["status"] in ("succeeded", "failed")

    wait_until(done, 20, "job finished")
    return job, seen


def test_mock_video_job_progresses_to_a_stored_gif(client, tokens):
    job, seen = run_job(client, tokens, {"kind": "video", "model": "mock/video",
                                          "prompt": "waves at dusk",
                                          "params": {"duration": 5, "aspect_ratio": "16:9"}})
    assert job["status"] == "succeeded" and job["progress"] == 1.0
    assert seen == sorted(seen) and len(set(seen)) >= 3  # rising, with steps in between
    [artifact] = job["artifacts"]
    # the mock's "video" is honestly a GIF, filed with the videos
    assert artifact["kind"] == "video" and artifact["mime"] == "image/gif"
    gallery = client.get("/api/artifacts", headers=auth(tokens), params={"kind": "video"})
    assert [a["id"] for a in gallery.json()["items"]] == [artifact["id"]]
    data = client.get(artifact["url"], headers=auth(tokens)).content
    frames = gif_frames(data)
    assert len(frames) == 12 and frames[0] != frames[6]
    assert artifact["run_id"] == job["run_id"]
    row = client.get(f"/api/history/{job['run_id']}", headers=auth(tokens)).json()
    assert (row["kind"], row["status"], row["cost_micro_usd"]) == ("video", "ok", 0)
    listed = client.get("/api/jobs", headers=auth(tokens)).json()["items"]
    assert listed[0]["id"] == job["id"]


def test_mock_midjourney_job_makes_a_grid_and_four_images(client, tokens):
    job, seen = run_job(client, tokens, {"kind": "midjourney", "model": "mock/midjourney",
                                          "prompt": "a castle", "params": {"aspect_ratio": "3:2"}})
    assert job["status"] == "succeeded" and seen == sorted(seen)
    grid, *tiles = job["artifacts"]
    assert len(tiles) == 4
    grid_size = png_size(client.get(grid["url"], headers=auth(tokens)).content)
    tile_size = png_size(client.get(tiles[0]["url"], headers=auth(tokens)).content)
    assert grid_size == (2 * tile_size[0], 2 * tile_size[1]) == (512, 342)


def test_job_refusals_name_the_field_and_are_recorded(client, tokens):
    bad = client.post("/api/jobs", headers=auth(tokens), json={
        "kind": "video", "model": "mock/video", "prompt": "x", "params": {"duration": 7}})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "params.duration"
    wrong_kind = client.post("/api/jobs", headers=auth(tokens), json={
        "kind": "video", "model": "mock/image", "prompt": "x"})
    assert wrong_kind.status_code == 400 and wrong_kind.json()["error"]["param"] == "model"
    rows = client.get("/api/history", headers=auth(tokens)).json()["items"]
    assert [r["error_code"] for r in rows[:2]] == ["invalid_request", "invalid_request"]
    assert rows[0]["kind"] == "video"


def test_artifacts_only_for_owner_their_teachers_and_admins(client, tokens):
    made = client.post("/v1/images/generations", headers=auth(tokens), json={
        "model": "mock/image", "prompt": "private", "size": "32x32"}).json()
    url = f"/api/artifacts/{made['artifacts'][0]}"
    expected = {"student_a": 200, "teacher_a": 200, "admin": 200, "student_a2": 404,
                "teacher_b": 404, "student_b": 404}
    got = {who: client.get(url, headers=auth(tokens, who)).status_code for who in expected}
    assert got == expected
    assert client.get(url).status_code == 401
    assert client.get("/api/artifacts", headers=auth(tokens, "student_a2")).json()["items"] == []
    job = client.post("/api/jobs", headers=auth(tokens), json={
        "kind": "video", "model": "mock/video", "prompt": "mine"}).json()
    assert client.get(f"/api/jobs/{job['id']}", headers=auth(tokens, "student_b")).status_code \
        == 404
    assert client.get(f"/api/jobs/{job['id']}", headers=auth(tokens, "teacher_a")).status_code \
        == 200
