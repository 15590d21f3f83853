"""``Speech()``: text to speech with a choice of voice, played in the notebook.

OpenAI's ``tts-*`` models and ElevenLabs' ``eleven_*`` models (and the free
``mock/speech``) read your text aloud. ElevenLabs voices have two extra
settings: *stability* (low: more expressive, high: steadier) and
*similarity* (how closely to stick to the original voice). Each clip is kept
in the list below, and in the gateway::

    sp = Speech(model="mock/speech")
    clip = sp.say("Hello, class!")      # waits; the audio bytes and their type
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from .._catalog import provider_of
from .._client import GatewayClient
from .._exceptions import GatewayError
from .._mock import substitute
from .._resources import Audio
from ._base import ClassroomWidget, stat_line
from ._media import caption

DEFAULT_VOICES = {
    "openai": ["alloy", "ash", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer"],
    "mock": ["alloy", "echo", "nova"],
}
MAX_CLIPS = 10


class Speech(ClassroomWidget):
    """Turn text into speech and play it."""

    title = "Speech"
    feature = "speech"

    def __init__(self, model: str | None = None, text: str = "", *,
                 client: GatewayClient | None = None) -> None:
        self._initial = (model, text)
        self.clips: list[tuple[str, Audio]] = []
        self.voice_list: list[dict[str, Any]] = []
        super().__init__(client=client)

    def _build(self) -> list[w.Widget]:
        model, text = self._initial
        self.model_picker = w.Dropdown(description="Model", options=[],
                                       layout=w.Layout(width="auto", min_width="320px"))
        self.voice_picker = w.Dropdown(description="Voice", options=[])
        self.text_box = w.Textarea(value=text, description="Text", rows=3,
                                   placeholder="What should be said?",
                                   layout=w.Layout(width="100%"))
        self.stability = w.FloatSlider(value=0.5, min=0, max=1, step=0.05,
                                       description="Stability")
        self.similarity = w.FloatSlider(value=0.75, min=0, max=1, step=0.05,
                                        description="Similarity")
        self.voice_settings = w.HBox([self.stability, self.similarity])
        self.format = w.Dropdown(description="Format", options=["mp3", "wav"], value="mp3")
        self.say_button = w.Button(description="Speak", button_style="primary",
                                   icon="volume-up")
        self.saved_button = w.Button(description="Saved clips", icon="history")
        self.player = w.VBox()
        self.history = w.VBox()
        self.model_picker.observe(lambda _: self._model_changed(), names="value")
        self.say_button.on_click(lambda _: self._start(self._say_work(), "Speaking…"))
        self.saved_button.on_click(lambda _: self._start(self._saved_work(), "Loading…"))
        self._refresh_models(prefer=model)
        return [self.model_picker, self.voice_picker, self.text_box, self.voice_settings,
                self.format, w.HBox([self.say_button, self.saved_button]), self.player,
                w.HTML("<b>Clips</b>"), self.history]

    def _controls(self) -> list[w.Widget]:
        return [self.say_button, self.saved_button, self.model_picker]

    def _refresh_models(self, prefer: str | None = None) -> None:
        self._set_options(self.model_picker, self.model_options("speech"), prefer)
        self._model_changed()

    @property
    def model(self) -> str:
        return substitute(str(self.model_picker.value or "mock/speech"), "speech")

    @property
    def provider(self) -> str:
        return provider_of(self.model)

    def _model_changed(self) -> None:
        provider = self.provider
        self.voice_settings.layout.display = (
            None if provider in ("elevenlabs", "mock") else "none")
        try:
            self.voice_list = self.client.voices(provider)
        except GatewayError:
            self.voice_list = [{"id": v, "name": v} for v in DEFAULT_VOICES.get(provider, [])]
        self.voice_picker.options = [
            (f"{v.get('name') or v['id']}" + (f" — {v['description']}" if v.get("description")
                                             else ""), str(v.get("id") or v.get("voice_id")))
            for v in self.voice_list
        ]

    def say(self, text: str | None = None, voice: str | None = None,
            timeout: float | None = None) -> Audio:
        """Speak ``text`` (default: the text box); wait; return the clip."""
        self._require_enabled()
        if text is not None:
            self.text_box.value = text
        if voice is not None:
            self.voice_picker.value = voice
        self._run_and_wait(self._say_work(), "Speaking…", timeout)
        return self.clips[0][1]

    def _say_work(self) -> Any:
        text, model, voice = str(self.text_box.value), self.model, self.voice_picker.value
        settings = None
        if self.provider in ("elevenlabs", "mock"):
            settings = {"stability": float(self.stability.value),
                        "similarity_boost": float(self.similarity.value)}
        fmt = str(self.format.value)

        def work() -> None:
            if not text.strip():
                raise ValueError("Write the text to speak first.")
            clip = self.client.speech(text, model, voice=voice or None, response_format=fmt,
                                      voice_settings=settings)
            label = f"{model} · {voice or 'default voice'} · {_short(text)}"
            self.clips.insert(0, (label, clip))
            del self.clips[MAX_CLIPS:]
            self.player.children = [_player(clip, autoplay=True)]
            self.history.children = [
                w.VBox([w.HTML(stat_line(name)), _player(audio)]) for name, audio in self.clips
            ]

        return work

    def _saved_work(self) -> Any:
        def work() -> None:
            entries = self.client.artifacts(kind="audio", limit=MAX_CLIPS)
            rows = []
            for entry in entries:
                data, mime = self.client.artifact_bytes(entry)
                rows.append(w.VBox([w.HTML(stat_line(caption(entry))),
                                    _player(Audio(data, mime or "audio/mpeg"))]))
            self.history.children = rows or [w.HTML(stat_line("No saved clips yet."))]

        return work


def _player(clip: Audio, autoplay: bool = False) -> w.Audio:
    return w.Audio(value=clip.data, format=clip.format, autoplay=autoplay, loop=False)


def _short(text: str, limit: int = 50) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
