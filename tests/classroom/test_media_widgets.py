"""Images, Speech, Video and Embeddings against the real gateway's mock media models.

Each test first checks that the gateway serves the endpoints it needs, and
fails naming any that is missing.
"""

from __future__ import annotations

import pytest
from classroom import Embeddings, GatewayError, Images, Speech, Video

# -- embeddings ----------------------------------------------------------------------------

def test_embeddings_are_projected_and_searched(requires, make_client, recorder):
    requires("/v1/embeddings")
    emb = Embeddings(client=make_client(transport=recorder), model="mock/embed")
    emb.embed_button.click()
    assert emb.wait(60) and emb.last_error is None, emb.error_box.text
    assert len(emb.vectors) == 6 and len(emb.points) == 6
    assert recorder.bodies("/v1/embeddings")[0]["input"][0] == "The cat sleeps on the sofa."
    trace = emb.chart.figure.data[0]
    assert len(trace.x) == 6 and "sofa" in trace.hovertext[0]

    matches = emb.nearest("Dogs love to run in the park.", k=2)
    assert matches[0] == ("Dogs love to run in the park.", pytest.approx(1.0, abs=1e-6))
    assert len(matches) == 2
    assert "cosine similarity" in emb.neighbours.value
    assert "nearest to" in emb.chart.figure.layout.title.text


def test_embeddings_need_two_texts_and_a_known_model(requires, make_client):
    requires("/v1/embeddings")
    emb = Embeddings(client=make_client(), texts=["only one"], model="mock/embed")
    with pytest.raises(ValueError, match="at least two texts"):
        emb.embed()
    emb.model_picker.options = ["no-such-embedder"]
    with pytest.raises(GatewayError):
        emb.embed(["a", "b"])
    assert "What to do:" in emb.error_box.message.value


# -- images --------------------------------------------------------------------------------

def test_images_are_generated_with_the_chosen_options(requires, make_client, recorder):
    requires("/v1/images/generations")
    img = Images(client=make_client(transport=recorder), model="mock/image")
    img.style.value = "watercolor"
    img.count.value = 2
    images = img.generate("a lighthouse at dawn")
    assert len(images) == 2 and all(len(b) > 20 for b in images)
    sent = recorder.bodies("/v1/images/generations")[-1]
    assert sent["model"] == "mock/image" and sent["n"] == 2
    assert sent["prompt"].startswith("a lighthouse at dawn. Style: a soft watercolor")
    assert len(img.output.children) == 2


def test_an_image_can_be_edited_turn_after_turn(requires, make_client):
    requires("/v1/images/generations", "/v1/images/edits")
    img = Images(client=make_client(), model="mock/image")
    img.generate("a red bicycle")
    img.edit("make it blue")
    img.edit_box.value = "add a basket"
    img.edit_button.click()
    assert img.wait(60) and img.last_error is None, img.error_box.text
    assert len(img.images) == 3
    assert img.turns[1:] == ["make it blue", "add a basket"]
    assert "→" in img.info.value


def test_midjourney_style_flags_and_job_progress(requires, make_client, recorder):
    requires("/api/jobs", "/api/jobs/{job_id}")
    img = Images(client=make_client(transport=recorder), model="mock/midjourney")
    assert img.midjourney_box.layout.display is None and img.openai_box.layout.display == "none"
    img.aspect.value, img.version.value, img.stylize.value = "16:9", "6.1", 250
    images = img.generate("a castle in the clouds")
    assert images and img.progress.bar.value == 1.0
    job = recorder.bodies("/api/jobs")[0]
    assert job["kind"] == "midjourney"
    assert job["prompt"] == "a castle in the clouds --ar 16:9 --v 6.1 --s 250"
    assert img.progress.seen[-1][0] == "succeeded"


def test_the_gallery_shows_my_images_newest_first(requires, make_client):
    requires("/v1/images/generations", "/api/artifacts")
    img = Images(client=make_client("student_a2"), model="mock/image")
    img.generate("first picture")
    img.generate("second picture")
    gallery = img.load_gallery()
    assert [g["prompt"] for g in gallery[:2]] == ["second picture", "first picture"]
    assert len(img.gallery_box.children) == len(gallery)


def test_images_refuse_an_empty_prompt(make_client, recorder):
    img = Images(client=make_client(transport=recorder), model="mock/image")
    with pytest.raises(ValueError, match="Describe the picture"):
        img.generate("  ")
    with pytest.raises(ValueError, match="Generate an image first"):
        img.edit("brighter")
    assert not recorder.bodies("/v1/images/generations")


# -- speech --------------------------------------------------------------------------------

def test_speech_plays_and_keeps_a_history(requires, make_client, recorder):
    requires("/v1/audio/speech")
    sp = Speech(client=make_client(transport=recorder), model="mock/speech")
    assert sp.voice_picker.options, "voices are listed"
    sp.stability.value, sp.similarity.value = 0.3, 0.9
    first = sp.say("Hello, class!")
    assert first.data and first.mime.startswith("audio/")
    sp.text_box.value = "Second clip"
    sp.say_button.click()
    assert sp.wait(60) and sp.last_error is None, sp.error_box.text
    assert [label.split(" · ")[-1] for label, _ in sp.clips] == ["Second clip", "Hello, class!"]
    assert len(sp.history.children) == 2
    assert sp.player.children[0].value == sp.clips[0][1].data
    sent = recorder.bodies("/v1/audio/speech")[0]
    assert sent["input"] == "Hello, class!" and sent["model"] == "mock/speech"
    assert sent["voice_settings"] == {"stability": 0.3, "similarity_boost": 0.9}


def test_saved_clips_come_from_the_gateway(requires, make_client):
    requires("/v1/audio/speech", "/api/artifacts")
    sp = Speech(client=make_client("teacher_a"), model="mock/speech")
    sp.say("kept in the gateway")
    sp.saved_button.click()
    assert sp.wait(60) and sp.last_error is None, sp.error_box.text
    assert sp.history.children and "kept in the gateway" in sp.history.children[0].children[0].value


# -- video ---------------------------------------------------------------------------------

def test_a_video_from_text_shows_progress_and_plays(requires, make_client, recorder):
    requires("/api/jobs", "/api/jobs/{job_id}")
    vid = Video(client=make_client(transport=recorder), model="mock/video")
    vid.resolution.value, vid.mode.value = "1080p", "pro"
    data = vid.generate("waves on a beach at sunset")
    assert data and vid.player.children
    assert vid.progress.bar.bar_style == "success" and vid.progress.bar.value == 1.0
    job = recorder.bodies("/api/jobs")[0]
    assert job["kind"] == "video" and job["model"] == "mock/video"
    assert job["params"]["resolution"] == "1080p" and job["params"]["mode"] == "pro"
    polls = [r for r in recorder.seen if r.method == "GET" and "/api/jobs/" in r.path]
    assert polls


def test_a_video_from_frames_sends_the_frames(requires, make_client, recorder):
    requires("/api/jobs", "/api/jobs/{job_id}")
    vid = Video(client=make_client(transport=recorder), model="mock/video")
    with pytest.raises(ValueError, match="start frame"):
        vid.source.value = "frames"
        vid.generate("zoom in")
    vid.set_frames(b"\x89PNG start", b"\x89PNG end")
    vid.generate("zoom in")
    params = recorder.bodies("/api/jobs")[-1]["params"]
    assert params["image"] and params["image_tail"]
