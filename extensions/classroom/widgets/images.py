"""``Images()``: make pictures from words with each image provider, and keep a gallery.

- OpenAI-style models (``gpt-image-*``, ``dall-e-*``): size, quality, how many.
- Google's image models (``gemini-*-image``, ``imagen-*``): style presets, and
  multi-turn editing — describe a change and the last image is edited.
- Midjourney-style (``midjourney``): the ``--ar`` (aspect ratio), ``--v``
  (version) and ``--s`` (stylize) flags, run as a job with a progress bar.

Every image is kept by the gateway; **Gallery** shows yours, newest first::

    img = Images(model="mock/image")
    img.generate("a lighthouse at dawn")    # waits; returns the images' bytes
    img.edit("make it night time")          # changes the last image
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from .._catalog import provider_of
from .._client import GatewayClient
from .._mock import mock_enabled
from ._base import ClassroomWidget, stat_line
from ._media import GALLERY_SIZE, JobProgress, caption, job_artifact_ids

STYLE_PRESETS = {
    "none": "",
    "photographic": "a realistic photograph, natural light, sharp focus",
    "cinematic": "a cinematic film still, dramatic lighting, wide shot",
    "anime": "anime illustration, clean line art, vivid colours",
    "watercolor": "a soft watercolor painting on textured paper",
    "digital-art": "detailed digital art, concept art style",
    "pixel-art": "16-bit pixel art",
    "3d-render": "a 3D render, studio lighting, soft shadows",
    "line-drawing": "a black-and-white line drawing",
}
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
VERSIONS = ("7", "6.1", "6", "5.2")


def is_midjourney(model: str) -> bool:
    return model.lower().startswith(("midjourney", "mock/midjourney"))


def midjourney_prompt(prompt: str, ar: str, version: str, stylize: int) -> str:
    """A Midjourney-style prompt: the text, then the flags."""
    return f"{prompt.strip()} --ar {ar} --v {version} --s {stylize}"


class Images(ClassroomWidget):
    """Generate and edit images, and see your gallery."""

    title = "Images"
    feature = "images"

    def __init__(self, model: str | None = None, prompt: str = "", *,
                 client: GatewayClient | None = None) -> None:
        self._initial = (model, prompt)
        self.images: list[bytes] = []
        self.turns: list[str] = []
        self.gallery: list[dict[str, Any]] = []
        self.last_job: dict[str, Any] | None = None
        super().__init__(client=client)

    def _build(self) -> list[w.Widget]:
        model, prompt = self._initial
        self.model_picker = w.Dropdown(description="Model", options=[],
                                       layout=w.Layout(width="auto", min_width="320px"))
        self.prompt_box = w.Textarea(value=prompt, description="Prompt", rows=3,
                                     placeholder="Describe the picture",
                                     layout=w.Layout(width="100%"))
        self.size = w.Dropdown(description="Size", options=["1024x1024", "1024x1536",
                                                            "1536x1024", "auto"])
        self.quality = w.Dropdown(description="Quality", options=["auto", "low", "medium",
                                                                  "high"])
        self.count = w.IntSlider(value=1, min=1, max=4, description="How many")
        self.openai_box = w.HBox([self.size, self.quality, self.count])
        self.style = w.Dropdown(description="Style", options=list(STYLE_PRESETS))
        self.google_box = w.HBox([self.style])
        self.aspect = w.Dropdown(description="--ar", options=ASPECT_RATIOS)
        self.version = w.Dropdown(description="--v", options=VERSIONS)
        self.stylize = w.IntSlider(value=100, min=0, max=1000, step=25, description="--s")
        self.midjourney_box = w.HBox([self.aspect, self.version, self.stylize])
        self.generate_button = w.Button(description="Generate", button_style="primary",
                                        icon="image")
        self.progress = JobProgress()
        self.output = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.info = w.HTML()
        self.edit_box = w.Text(description="Change it", layout=w.Layout(width="100%"),
                               placeholder="e.g. “make it night time” — edits the last image")
        self.edit_button = w.Button(description="Edit last image", icon="magic")
        self.gallery_button = w.Button(description="Gallery", icon="th")
        self.gallery_box = w.GridBox(layout=w.Layout(
            grid_template_columns="repeat(auto-fill, 180px)", grid_gap="6px"))

        self.model_picker.observe(lambda _: self._show_controls(), names="value")
        self.generate_button.on_click(lambda _: self._start(self._generate_work(), "Drawing…"))
        self.edit_button.on_click(
            lambda _: self._start(self._edit_work(str(self.edit_box.value)), "Editing…"))
        self.gallery_button.on_click(lambda _: self._start(self._gallery_work(), "Loading…"))
        self._refresh_models(prefer=model)
        return [self.model_picker, self.prompt_box, self.openai_box, self.google_box,
                self.midjourney_box, w.HBox([self.generate_button, self.gallery_button]),
                self.progress, self.info, self.output, self.edit_box, self.edit_button,
                self.gallery_box]

    def _controls(self) -> list[w.Widget]:
        return [self.generate_button, self.edit_button, self.gallery_button, self.model_picker]

    def _refresh_models(self, prefer: str | None = None) -> None:
        options = self.model_options("image")
        extra = [m for m in self.catalog.ids(mock_only=mock_enabled())
                 if is_midjourney(m) and m not in options]
        self._set_options(self.model_picker, options + extra, prefer)
        self._show_controls()

    @property
    def model(self) -> str:
        chosen = str(self.model_picker.value or "mock/image")
        if mock_enabled() and not chosen.startswith("mock/"):
            return "mock/midjourney" if is_midjourney(chosen) else "mock/image"
        return chosen

    def _show_controls(self) -> None:
        model = self.model
        family = "midjourney" if is_midjourney(model) else provider_of(model)
        self.openai_box.layout.display = None if family in ("openai", "mock") else "none"
        self.google_box.layout.display = None if family in ("google", "mock") else "none"
        self.midjourney_box.layout.display = None if family == "midjourney" else "none"
        self.edit_button.disabled = family == "midjourney"

    # -- actions -------------------------------------------------------------------------

    def generate(self, prompt: str | None = None, timeout: float | None = None) -> list[bytes]:
        """Generate images for ``prompt`` (default: the prompt box); wait; return their bytes."""
        self._require_enabled()
        if prompt is not None:
            self.prompt_box.value = prompt
        self._run_and_wait(self._generate_work(), "Drawing…", timeout)
        return self.images

    def edit(self, instruction: str, timeout: float | None = None) -> bytes:
        """Change the last image as ``instruction`` says (multi-turn editing)."""
        self._require_enabled()
        self.edit_box.value = instruction
        self._run_and_wait(self._edit_work(instruction), "Editing…", timeout)
        return self.images[-1]

    def load_gallery(self, timeout: float | None = None) -> list[dict[str, Any]]:
        """Your saved images, newest first (also shown in the widget)."""
        self._require_enabled()
        self._run_and_wait(self._gallery_work(), "Loading…", timeout)
        return self.gallery

    def full_prompt(self) -> str:
        """The prompt as sent: with the style preset or the Midjourney flags added."""
        prompt = str(self.prompt_box.value).strip()
        model = self.model
        if is_midjourney(model):
            return midjourney_prompt(prompt, self.aspect.value, self.version.value,
                                     int(self.stylize.value))
        style = STYLE_PRESETS.get(str(self.style.value), "")
        if style and provider_of(model) in ("google", "mock"):
            return f"{prompt}. Style: {style}."
        return prompt

    def _generate_work(self) -> Any:
        model, prompt = self.model, self.full_prompt()

        def work() -> None:
            if not str(self.prompt_box.value).strip():
                raise ValueError("Describe the picture first, then press Generate.")
            if is_midjourney(model):
                images = self._midjourney(model, prompt)
            else:
                params: dict[str, Any] = {}
                if provider_of(model) in ("openai", "mock") and self.quality.value != "auto":
                    params["quality"] = self.quality.value
                size = self.size.value if self.size.value != "auto" else None
                generated = self.client.generate_image(
                    prompt, model, n=int(self.count.value), size=size, **params)
                images = [self._bytes_of(image) for image in generated]
            self.images = images
            self.turns = [prompt]
            self._show(f"{len(images)} image(s) from {model}")

        return work

    def _midjourney(self, model: str, prompt: str) -> list[bytes]:
        params = {"ar": self.aspect.value, "v": self.version.value,
                  "s": int(self.stylize.value)}
        job = self.client.start_job("midjourney", model, prompt, params)
        self.last_job = self.progress.run(self.client, job)
        return [self.client.artifact_bytes(a)[0] for a in job_artifact_ids(self.last_job)]

    def _bytes_of(self, image: Any) -> bytes:
        if image.data is not None:
            return bytes(image.data)
        return self.client.artifact_bytes(image.artifact_id or image.url)[0]

    def _edit_work(self, instruction: str) -> Any:
        model = self.model

        def work() -> None:
            if not instruction.strip():
                raise ValueError("Describe the change first, e.g. “make it night time”.")
            if not self.images:
                raise ValueError("Generate an image first; then describe how to change it.")
            [edited] = self.client.edit_image(self.images[-1], instruction, model)[:1]
            self.images.append(self._bytes_of(edited))
            self.turns.append(instruction)
            self._show(f"edit {len(self.turns) - 1}: {instruction}")

        return work

    def _gallery_work(self) -> Any:
        def work() -> None:
            self.gallery = self.client.artifacts(kind="image", limit=GALLERY_SIZE)
            tiles = []
            for entry in self.gallery[:GALLERY_SIZE]:
                data, _ = self.client.artifact_bytes(entry)
                tiles.append(w.VBox([
                    w.Image(value=data, layout=w.Layout(width="170px")),
                    w.HTML(stat_line(caption(entry))),
                ]))
            self.gallery_box.children = tiles or [w.HTML(stat_line("No images saved yet."))]

        return work

    def _show(self, note: str) -> None:
        self.output.children = [
            w.Image(value=data, layout=w.Layout(max_width="320px", margin="2px"))
            for data in self.images[-4:]
        ]
        self.info.value = stat_line(note, " → ".join(self.turns) if len(self.turns) > 1 else "")
