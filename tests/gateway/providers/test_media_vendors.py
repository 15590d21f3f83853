"""ElevenLabs, Kling and LegNext through the gateway: speech with voices and settings,
characters metered; video and Midjourney-style jobs from creation to stored artifact with
rising progress, metered per second and per task; their failures in words."""

from __future__ import annotations

import base64

import httpx
import pytest
from openai import OpenAI

from gateway.providers.kling import jwt_token
from tests.support.procs import wait_until


@pytest.fixture
def client(vendor_gateway, tokens):
    return OpenAI(base_url=vendor_gateway.url + "/v1", api_key=tokens["student_a"],
                  max_retries=0)


def test_elevenlabs_speech_by_voice_name_with_settings(client, fakes, api):
    audio = client.audio.speech.create(
        model="eleven_multilingual_v2", voice="Rachel", input="Annyeong, class!",
        extra_body={"voice_settings": {"stability": 0.3, "similarity_boost": 0.8}})
    assert audio.content.startswith(b"ID3")
    voices, spoken = fakes.requests("elevenlabs")[-2:]
    assert voices["path"] == "/v1/voices"
    assert spoken["path"] == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM"
    assert spoken["query"] == {"output_format": "mp3_44100_128"}
    assert spoken["headers"]["xi-api-key"] == "xi-fake-0001"
    assert spoken["json"] == {"text": "Annyeong, class!", "model_id": "eleven_multilingual_v2",
                              "voice_settings": {"stability": 0.3, "similarity_boost": 0.8}}
    row = api().last_run()
    assert (row["kind"], row["provider"], row["cost_micro_usd"]) == ("speech", "elevenlabs", 1600)
    by_id = client.audio.speech.create(model="eleven_flash_v2_5", voice="AZnzlk1XvdvUeBnXmlld",
                                       input="Hi")
    assert by_id.content.startswith(b"ID3")
    assert fakes.requests("elevenlabs")[-1]["path"].endswith("/AZnzlk1XvdvUeBnXmlld")


def test_elevenlabs_voices_and_refusals(client, api):
    voices = api().get("/api/voices", provider="elevenlabs")["voices"]
    assert [v["name"] for v in voices] == ["Rachel", "Domi"]
    assert voices[0]["id"] == "21m00Tcm4TlvDq8ikWAM" and voices[0]["labels"]["gender"] == "female"
    unknown = api().post("/v1/audio/speech", {"model": "eleven_v3", "voice": "Nobody",
                                              "input": "x"})
    assert unknown.status_code == 400 and unknown.json()["error"]["param"] == "voice"
    bad = api().post("/v1/audio/speech", {"model": "eleven_v3", "voice": "Rachel", "input": "x",
                                          "voice_settings": {"stability": 3}})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["param"] == "voice_settings.stability" and "between 0 and 1" in error["message"]


def run_job(api, body):
    created = api.post("/api/jobs", body)
    assert created.status_code == 202, created.text
    job = created.json()
    seen = [job["progress"]]

    def done() -> bool:
        job.update(api.get(f"/api/jobs/{job['id']}"))
        seen.append(job["progress"])
        return job["status"] in ("succeeded", "failed")

    wait_until(done, 20, "job finished")
    return job, seen


def test_kling_text_to_video_job(api, fakes):
    fakes.set("kling", polls=4)
    job, seen = run_job(api(), {"kind": "video", "model": "kling-v2-1", "prompt": "a tiger",
                                "params": {"duration": 10, "mode": "pro",
                                           "aspect_ratio": "9:16"}})
    assert job["status"] == "succeeded", job["error"]
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(set(seen)) >= 3
    created, *polls = fakes.requests("kling")
    assert created["path"] == "/v1/videos/text2video"
    assert created["json"] == {"model_name": "kling-v2-1", "prompt": "a tiger", "mode": "pro",
                               "aspect_ratio": "9:16", "duration": "10"}
    token = created["headers"]["authorization"].removeprefix("Bearer ")
    assert token.count(".") == 2 and token.split(".")[0] == jwt_token("a", "b").split(".")[0]
    assert [p["path"].rsplit("/", 2)[1] for p in polls[:4]] == ["text2video"] * 4
    [video] = job["artifacts"]
    assert (video["kind"], video["mime"]) == ("video", "video/mp4")
    data = httpx.get(video["url"], headers=api().headers).content
    assert data[4:8] == b"ftyp"
    row = api().get(f"/api/history/{job['run_id']}")
    # 10 s of pro video at $0.098 per second
    assert (row["kind"], row["status"], row["cost_micro_usd"]) == ("video", "ok", 980_000)
    assert row["key_name"] == "kling-main"


def test_kling_image_to_video_with_start_and_end_frames(api, fakes):
    frame = "data:image/png;base64," + base64.b64encode(b"\x89PNG-start").decode()
    job, _ = run_job(api(), {"kind": "video", "model": "kling-v1-6", "prompt": "move", "params": {
        "image": frame, "image_tail": "https://example.invalid/end.png", "mode": "pro"}})
    assert job["status"] == "succeeded"
    sent = fakes.requests("kling")[0]
    assert sent["path"] == "/v1/videos/image2video"
    assert sent["json"]["image"] == base64.b64encode(b"\x89PNG-start").decode()
    assert sent["json"]["image_tail"] == "https://example.invalid/end.png"


def test_kling_refusal_fails_the_job_in_words(api):
    job, _ = run_job(api(), {"kind": "video", "model": "kling-v2-1", "prompt": "[[unsafe]]"})
    assert job["status"] == "failed"
    assert job["error"]["code"] == "content_blocked"
    assert "risk control" in job["error"]["message"]
    row = api().get(f"/api/history/{job['run_id']}")
    assert (row["status"], row["error_code"]) == ("error", "content_blocked")


def test_legnext_midjourney_job(api, fakes):
    job, seen = run_job(api(), {"kind": "midjourney", "model": "midjourney",
                                "prompt": "a castle in the clouds",
                                "params": {"aspect_ratio": "16:9", "version": 7, "stylize": 250}})
    assert job["status"] == "succeeded", job["error"]
    # the vendor's own progress (0, 50 %, 75 %, done), never an estimate, never backwards
    assert seen == sorted(seen) and set(seen) <= {0.0, 0.01, 0.5, 0.75, 1.0}
    created = fakes.requests("legnext")[0]
    assert created["json"] == {"text": "a castle in the clouds --ar 16:9 --v 7 --s 250"}
    assert created["headers"]["x-api-key"] == "lx-fake-0001"
    grid, *images = job["artifacts"]
    assert len(images) == 4 and grid["mime"] == "image/png"
    assert images[0]["meta"]["source_url"].endswith("/0.png")
    row = api().get(f"/api/history/{job['run_id']}")
    assert (row["kind"], row["cost_micro_usd"]) == ("image", 40_000)
    kept = api().get("/api/artifacts", kind="image")["items"]
    assert {a["id"] for a in job["artifacts"]} <= {a["id"] for a in kept}


def test_legnext_flags_already_in_the_prompt_are_kept(api, fakes):
    job, _ = run_job(api(), {"kind": "midjourney", "model": "midjourney",
                             "prompt": "a fox --ar 2:3", "params": {"aspect_ratio": "16:9"}})
    assert fakes.requests("legnext")[0]["json"]["text"] == "a fox --ar 2:3"
    failed, _ = run_job(api(), {"kind": "midjourney", "model": "midjourney",
                                "prompt": "[[fail]]"})
    assert failed["status"] == "failed" and "Banned prompt" in failed["error"]["message"]
