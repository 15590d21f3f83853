"""``Video()``: a short video from a text, or from a start frame and an end frame.

Video models take minutes, so the gateway runs them as a *job*: the widget
starts it (``POST /api/jobs``), shows a progress bar while it asks how far
it is (``GET /api/jobs/{id}``), and plays the result in the notebook::

    vid = Video(model="mock/video")
    vid.generate("waves rolling onto a beach at sunset")   # waits; the mp4 bytes
"""

from __future__ import annotations

import base64
from typing import Any

import ipywidgets as w

from .._client import GatewayClient
from .._mock import substitute
from ._base import ClassroomWidget, stat_line
from ._media import JobProgress, job_artifact_ids

MODES = (("Standard", "std"), ("Professional", "pro"))
RESOLUTIONS = ("720p", "1080p")
DURATIONS = (5, 10)


class Video(ClassroomWidget):
    """Make a short video from text or frames; watch its progress; play it."""

    title = "Video"
    feature = "video"

    def __init__(self, model: str | None = None, prompt: str = "", *,
                 client: GatewayClient | None = None, timeout: float = 900) -> None:
        self._initial = (model, prompt)
        self.timeout = timeout
        self.video: bytes | None = None
        self.video_mime = "video/mp4"
        self.last_job: dict[str, Any] | None = None
        self.start_frame: bytes | None = None
        self.end_frame: bytes | None = None
        super().__init__(client=client)

    def _build(self) -> list[w.Widget]:
        model, prompt = self._initial
        self.model_picker = w.Dropdown(description="Model", options=[],
                                       layout=w.Layout(width="auto", min_width="320px"))
        self.source = w.ToggleButtons(options=[("From text", "text"),
                                               ("From frames", "frames")],
                                      value="text", description="Start")
        self.prompt_box = w.Textarea(value=prompt, description="Prompt", rows=3,
                                     placeholder="Describe the scene and the motion",
                                     layout=w.Layout(width="100%"))
        self.start_upload = w.FileUpload(accept="image/*", description="Start frame")
        self.end_upload = w.FileUpload(accept="image/*", description="End frame")
        self.frames_box = w.HBox([self.start_upload, self.end_upload])
        self.mode = w.Dropdown(description="Mode", options=MODES, value="std")
        self.resolution = w.Dropdown(description="Resolution", options=RESOLUTIONS)
        self.duration = w.Dropdown(description="Seconds", options=DURATIONS)
        self.generate_button = w.Button(description="Generate", button_style="primary",
                                        icon="film")
        self.progress = JobProgress()
        self.player = w.VBox()
        self.info = w.HTML()
        self.source.observe(lambda _: self._show_frames(), names="value")
        self.generate_button.on_click(lambda _: self._start(self._work(), "Starting the job…"))
        self._refresh_models(prefer=model)
        self._show_frames()
        return [self.model_picker, self.source, self.prompt_box, self.frames_box,
                w.HBox([self.mode, self.resolution, self.duration]), self.generate_button,
                self.progress, self.info, self.player]

    def _controls(self) -> list[w.Widget]:
        return [self.generate_button, self.model_picker, self.source]

    def _refresh_models(self, prefer: str | None = None) -> None:
        self._set_options(self.model_picker, self.model_options("video"), prefer)

    def _show_frames(self) -> None:
        self.frames_box.layout.display = None if self.source.value == "frames" else "none"

    @property
    def model(self) -> str:
        return substitute(str(self.model_picker.value or "mock/video"), "video")

    def set_frames(self, start: bytes | None, end: bytes | None = None) -> None:
        """Use these images as the first (and last) frame of the video."""
        self.start_frame, self.end_frame = start, end
        self.source.value = "frames"

    def params(self) -> dict[str, Any]:
        """The job's parameters, frames included (as base64) when starting from frames."""
        params: dict[str, Any] = {"mode": self.mode.value, "resolution": self.resolution.value,
                                  "duration": self.duration.value}
        if self.source.value == "frames":
            start = self.start_frame or _uploaded(self.start_upload)
            end = self.end_frame or _uploaded(self.end_upload)
            if start is None:
                raise ValueError("Choose a start frame (an image), or start from text.")
            params["image"] = base64.b64encode(start).decode()
            if end is not None:
                params["image_tail"] = base64.b64encode(end).decode()
        return params

    def generate(self, prompt: str | None = None, timeout: float | None = None) -> bytes:
        """Make the video; wait for the job; return the video's bytes."""
        self._require_enabled()
        if prompt is not None:
            self.prompt_box.value = prompt
        self._run_and_wait(self._work(), "Starting the job…", timeout)
        assert self.video is not None
        return self.video

    def _work(self) -> Any:
        model, prompt = self.model, str(self.prompt_box.value)

        def work() -> None:
            if not prompt.strip() and self.source.value == "text":
                raise ValueError("Describe the video first, then press Generate.")
            params = self.params()
            self.player.children = []
            job = self.client.start_job("video", model, prompt, params)
            self.status.value = stat_line("The job is running; this can take a while.")
            self.last_job = self.progress.run(self.client, job, timeout=self.timeout)
            ids = job_artifact_ids(self.last_job)
            if not ids:
                raise ValueError("The job finished without a video.")
            self.video, mime = self.client.artifact_bytes(ids[0])
            self.video_mime = mime or "video/mp4"
            fmt = self.video_mime.split("/")[-1] or "mp4"
            layout = w.Layout(max_width="640px")
            # Some models (the practice one among them) deliver an animated image.
            player = (w.Image(value=self.video, format=fmt, layout=layout)
                      if self.video_mime.startswith("image/")
                      else w.Video(value=self.video, format=fmt, autoplay=False, controls=True,
                                   layout=layout))
            self.player.children = [player]
            self.info.value = stat_line(f"{model}", f"{len(self.video) // 1024} KiB",
                                        f"job {self.last_job.get('id', '')}")

        return work


def _uploaded(upload: w.FileUpload) -> bytes | None:
    value = upload.value
    if not value:
        return None
    first = value[0] if isinstance(value, (list, tuple)) else next(iter(value.values()))
    content = first["content"] if isinstance(first, dict) else first.content
    return bytes(content)
