"""``Suno()``: your school's Suno account, and practice music jobs.

As on the seed platform, a school hands its Suno accounts to students: the widget
shows the one assigned to you (its email and memo; the password only when you press
*Reveal password*, and every reveal is in the audit log) and how to use it at
suno.com, or says that none is assigned. Below, a music job runs through the gateway
like every other media call (``POST /api/jobs`` with ``kind: "music"``) and plays the
clip; ``mock/music`` makes a short melody offline::

    s = Suno()
    s.account()                            # {"assigned": True, "account": {...}, ...}
    s.reveal()                             # the password (audited)
    wav = s.generate("a calm lo-fi beat")  # waits; the WAV bytes
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from gateway.safehtml import html

from .._client import GatewayClient
from .._mock import substitute
from ._base import ClassroomWidget, muted, stat_line
from ._media import JobProgress, job_artifact_ids

HIDDEN = "••••••••"


class Suno(ClassroomWidget):
    """Your assigned Suno account (password on click) and music jobs."""

    title = "Suno"
    feature = "music"

    def __init__(self, model: str | None = None, prompt: str = "", *,
                 client: GatewayClient | None = None, timeout: float = 300) -> None:
        self._initial = (model, prompt)
        self.timeout = timeout
        self.assignment: dict[str, Any] | None = None
        self.music: bytes | None = None
        self.last_job: dict[str, Any] | None = None
        self.revealed = ""
        super().__init__(client=client)

    def _build(self) -> list[w.Widget]:
        model, prompt = self._initial
        self.account_box = w.HTML()
        self.password_box = w.HTML()
        self.reveal_button = w.Button(description="Reveal password", icon="eye",
                                      layout=w.Layout(display="none"))
        self.reveal_button.on_click(lambda _: self._start(self._reveal_work(),
                                                          "Fetching the password…"))
        self.model_picker = w.Dropdown(description="Model", options=[],
                                       layout=w.Layout(width="auto", min_width="320px"))
        self.prompt_box = w.Textarea(value=prompt, description="Song", rows=2,
                                     placeholder="What the song is about",
                                     layout=w.Layout(width="100%"))
        self.style_box = w.Text(description="Style", placeholder="lo-fi, piano, 80 bpm")
        self.duration = w.IntSlider(value=8, min=5, max=30, description="Seconds")
        self.instrumental = w.Checkbox(value=True, description="Instrumental")
        self.generate_button = w.Button(description="Make music", button_style="primary",
                                        icon="music")
        self.generate_button.on_click(lambda _: self._start(self._music_work(), "Starting…"))
        self.progress = JobProgress()
        self.player = w.VBox()
        self.info = w.HTML()
        self._refresh_models(prefer=model)
        self._show_account()
        return [self.account_box, w.HBox([self.password_box, self.reveal_button]),
                w.HTML(html("<h4>{}</h4>", "Practise music generation")),
                self.model_picker, self.prompt_box,
                w.HBox([self.style_box, self.duration, self.instrumental]),
                self.generate_button, self.progress, self.info, self.player]

    def _controls(self) -> list[w.Widget]:
        return [self.generate_button, self.reveal_button, self.model_picker]

    def _refresh_models(self, prefer: str | None = None) -> None:
        self._set_options(self.model_picker, self.model_options("music"), prefer)

    @property
    def model(self) -> str:
        return substitute(str(self.model_picker.value or "mock/music"), "music")

    # -- the account ---------------------------------------------------------------------

    def account(self) -> dict[str, Any]:
        """Your assignment as the gateway has it (never the password)."""
        result: dict[str, Any] = self.client.get("/api/suno/me")
        self.assignment = result
        return result

    def _show_account(self) -> None:
        try:
            mine = self.account()
        except Exception as error:  # noqa: BLE001 - shown in the error box
            self.error_box.show(error)
            return
        account = mine.get("account")
        if not mine.get("assigned") or not account:
            self.account_box.value = html(
                '<div class="classroom-suno-none">{}</div>', mine.get("message") or
                "No Suno account is assigned to you.")
            return
        self.account_box.value = html(
            '<div class="classroom-suno-account"><b>Your Suno account</b><br>'
            "Email: <code>{}</code><br>Note: {}<br><span style=\"opacity:.75\">{}</span></div>",
            account.get("email", ""), account.get("memo") or "—", mine.get("how_to_use", ""))
        self.password_box.value = html("Password: <code>{}</code>", HIDDEN)
        self.reveal_button.layout.display = None

    def reveal(self) -> str:
        """Your account's password (the gateway writes the reveal in the audit log)."""
        self._require_enabled()
        self._run_and_wait(self._reveal_work(), "Fetching the password…", None)
        return self.revealed

    def _reveal_work(self) -> Any:
        def work() -> None:
            found: dict[str, Any] = self.client.post("/api/suno/me/reveal")
            self.revealed = str(found.get("password", ""))
            self.password_box.value = html("Password: <code>{}</code>", self.revealed)

        return work

    # -- music jobs ----------------------------------------------------------------------

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"duration": int(self.duration.value),
                                  "instrumental": bool(self.instrumental.value)}
        if self.style_box.value.strip():
            params["style"] = self.style_box.value.strip()
        return params

    def generate(self, prompt: str | None = None, timeout: float | None = None) -> bytes:
        """Make a music clip; wait for the job; return its bytes (WAV from mock/music)."""
        self._require_enabled()
        if prompt is not None:
            self.prompt_box.value = prompt
        self._run_and_wait(self._music_work(), "Starting…", timeout)
        assert self.music is not None
        return self.music

    def _music_work(self) -> Any:
        model, prompt = self.model, str(self.prompt_box.value)

        def work() -> None:
            if not prompt.strip():
                raise ValueError("Say what the song is about first, then press Make music.")
            self.player.children = []
            job = self.client.start_job("music", model, prompt, self.params())
            self.status.value = stat_line("The music job is running.")
            self.last_job = self.progress.run(self.client, job, timeout=self.timeout)
            ids = job_artifact_ids(self.last_job)
            if not ids:
                raise ValueError("The job finished without a clip.")
            self.music, mime = self.client.artifact_bytes(ids[0])
            fmt = (mime or "audio/wav").split("/")[-1]
            self.player.children = [w.Audio(value=self.music, format=fmt, autoplay=False)]
            self.info.value = stat_line(model, f"{len(self.music) // 1024} KiB",
                                        f"job {self.last_job.get('id', '')}")
            self.status.value = muted("Done.")

        return work
