"""Live views for teachers and admins: the class right now, and the key pool.

``ClassActivity()`` shows running calls, active students, requests and errors
per minute, who waits in the queue and the cost against the class budget, and
(for a teacher of the school, or an admin) pauses and resumes one student or
the whole class. ``KeyPoolLive()`` (admins) shows each key's leases, load and
cool-down and the queues. Both redraw in place every few seconds; no cell runs
again.

The page drives the refresh, not the kernel: a small invisible anywidget
(:class:`Ticker`) in each open view asks the kernel for fresh numbers every
``interval`` seconds while the page is open and visible. When the page is
closed (the JupyterLab tab, the Voila page) nothing asks any more, so nothing
polls the gateway; open it again and it goes on. Asks closer together than
``interval`` (two open views) are answered once. Time is a parameter
(``clock``) so tests move it.

A teacher of the school (or an admin) also gets "Start the class's labs":
it asks the hub to start every stopped student lab of the school ahead of
the lesson (:func:`classroom.classstart.start_class`, with the lab's own
hub token, which carries ``custom:classroom:start`` for the teacher's own
school only), and the view then shows, with every refresh, how many of the
class's labs are ready, starting, waiting in line and stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import anywidget
import ipywidgets as w
import traitlets

from gateway.safehtml import Safe, html, join

from .._catalog import format_cost
from .._client import GatewayClient
from .._exceptions import GatewayError
from ..classstart import class_status, start_class
from ._base import muted
from ._charts import Chart
from ._common import ErrorBox, Header, fetch_me

__all__ = ["ClassActivity", "KeyPoolLive", "Ticker"]

MIN_INTERVAL_S = 1.0


class Ticker(anywidget.AnyWidget):
    """Asks the kernel to refresh every ``interval`` seconds while a view of it is open."""

    _esm = """
    function render({ model, el }) {
      el.style.display = "none";
      const ask = () => { if (!document.hidden) model.send({ tick: Date.now() }); };
      let timer = null;
      const start = () => {
        clearInterval(timer);
        timer = setInterval(ask, Math.max(1, model.get("interval")) * 1000);
      };
      model.on("change:interval", start);
      document.addEventListener("visibilitychange", ask);
      ask();
      start();
      // The view is gone (tab closed, page left, output cleared): stop asking.
      return () => { clearInterval(timer); document.removeEventListener("visibilitychange", ask); };
    }
    export default { render };
    """
    interval = traitlets.Float(3.0).tag(sync=True)


class _LiveView:
    """A view that redraws itself from the gateway when its :class:`Ticker` asks."""

    title = "Live"

    def __init__(self, *, client: GatewayClient | None = None, interval: float = 3.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if client is None:
            from .. import client as default_client

            client = default_client
        self.client = client.with_source("widget")
        self.clock = clock
        self.interval = max(MIN_INTERVAL_S, float(interval))
        self.refreshes = 0  # how many times the gateway was read
        self.ticks = 0  # how many times an open page asked
        self.last_tick_at: float | None = None
        self.last: dict[str, Any] | None = None
        self._last_at: float | None = None
        self._lock = threading.Lock()
        self.header = Header(self.title)
        self.status = w.HTML()
        self.error_box = ErrorBox(self.client, layout=w.Layout(width="100%"))
        self.me, error = fetch_me(self.client)
        self.header.update(self.me)
        self.ticker = Ticker(interval=self.interval)
        self.ticker.on_msg(self._on_tick)
        children = self._build()
        self.widget = w.VBox([self.header, *children, self.status, self.error_box, self.ticker],
                             layout=w.Layout(width="100%", max_width="1100px"))
        if error is not None:
            self.error_box.show(error)
        else:
            self.refresh()

    # -- for subclasses ------------------------------------------------------------------

    def _build(self) -> list[w.Widget]:
        return []

    def _read(self) -> dict[str, Any]:
        return {}

    def _draw(self, data: dict[str, Any]) -> None:
        """Show ``data`` (what :meth:`_read` returned)."""

    # -- refreshing ------------------------------------------------------------------------

    def _on_tick(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if isinstance(content, dict) and "tick" in content:
            self.ticks += 1
            self.last_tick_at = self.clock()
            self.tick()

    def tick(self) -> bool:
        """A view asked for fresh numbers: refresh, unless done less than ``interval`` ago."""
        now = self.clock()
        if self._last_at is not None and now - self._last_at < self.interval * 0.8:
            return False
        self.refresh()
        return True

    def refresh(self) -> dict[str, Any] | None:
        """Read the gateway now and redraw; the data, or None when the gateway refused."""
        with self._lock:
            self._last_at = self.clock()
            try:
                data = self._read()
            except GatewayError as error:
                self.error_box.show(error)
                return None
            self.refreshes += 1
            self.last = data
            self.error_box.clear()
            self._draw(data)
            stamp = datetime.now(UTC).strftime("%H:%M:%S")
            self.status.value = muted(
                f"Live: updated {stamp} UTC, every {self.interval:g} s while this page is open."
            )
            return data

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = repr(self)
        return bundle

    def __repr__(self) -> str:
        return f"<{type(self).__name__} refreshes={self.refreshes}>"


def _card(label: str, value: Any, note: str = "") -> Safe:
    return html('<div class="classroom-card" style="display:inline-block;min-width:9em;'
                'margin:0 8px 6px 0;padding:4px 10px;border:1px solid #ccc;border-radius:4px">'
                '<div style="font-size:80%;opacity:.7">{}</div><div class="classroom-card-value" '
                'style="font-size:140%;font-weight:600">{}</div>'
                '<div style="font-size:75%;opacity:.6">{}</div></div>', label, value, note)


def _table(columns: list[str], rows: list[list[Any]], empty: str) -> Safe:
    if not rows:
        return muted(empty)
    head = join(html("<th>{}</th>", c) for c in columns)
    body = join(html("<tr>{}</tr>", join(html("<td>{}</td>", c) for c in row)) for row in rows)
    return html('<table class="classroom-live-table"><tr>{}</tr>{}</table>', head, body)


class ClassActivity(_LiveView):
    """The class right now, live; pause and resume buttons for its teachers."""

    title = "Class activity now"

    def __init__(self, *, client: GatewayClient | None = None, interval: float = 3.0,
                 window_minutes: int = 30, tenant: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.window_minutes = window_minutes
        self.tenant = tenant
        self.message = w.HTML()
        self.last_start: dict[str, Any] | None = None  # the hub's answer to the last start
        super().__init__(client=client, interval=interval, clock=clock)

    @property
    def can_pause(self) -> bool:
        return bool(self.me) and (self.me or {}).get("role") in ("teacher", "admin")

    @property
    def school(self) -> str | None:
        return self.tenant or (self.me or {}).get("tenant")

    @property
    def can_start_class(self) -> bool:
        """A teacher of the school shown, or an admin (the hub checks it again)."""
        me = self.me or {}
        if me.get("role") == "admin":
            return bool(self.school)
        return me.get("role") == "teacher" and self.school == me.get("tenant")

    def _build(self) -> list[w.Widget]:
        self.alert = w.HTML()
        self.cards = w.HTML()
        self.chart = Chart(height=260)
        self.budget_chart = Chart(height=170)
        self.running = w.HTML()
        self.queue = w.HTML()
        self.errors = w.HTML()
        children: list[w.Widget] = [self.alert, self.cards, self.chart.widget,
                                    self.budget_chart.widget,
                                    w.HTML("<b>Running now</b>"), self.running,
                                    w.HTML("<b>Waiting for a key</b>"), self.queue,
                                    w.HTML("<b>Recent errors</b>"), self.errors]
        if self.can_pause:
            self.student = w.Combobox(placeholder="a student's username",
                                      description="Student", ensure_option=False)
            self.pause_student = w.Button(description="Pause student", icon="pause")
            self.resume_student = w.Button(description="Resume student", icon="play")
            self.pause_class = w.Button(description="Pause the whole class", icon="pause",
                                        button_style="warning", layout=w.Layout(width="auto"))
            self.resume_class = w.Button(description="Resume the whole class", icon="play",
                                         button_style="success", layout=w.Layout(width="auto"))
            self.pauses = w.HTML()
            self.pause_student.on_click(
                lambda _: self._act(self.pause, str(self.student.value or "").strip()))
            self.resume_student.on_click(
                lambda _: self._act(self.resume, str(self.student.value or "").strip()))
            self.pause_class.on_click(lambda _: self._act(self.pause, None))
            self.resume_class.on_click(lambda _: self._act(self.resume, None))
            children += [
                w.HTML("<b>Pause and resume</b>"),
                w.HBox([self.student, self.pause_student, self.resume_student]),
                w.HBox([self.pause_class, self.resume_class]),
                self.pauses, self.message,
            ]
        if self.can_start_class:
            self.labs = w.HTML()
            self.start_labs = w.Button(description="Start the class's labs", icon="rocket",
                                       button_style="primary", layout=w.Layout(width="auto"),
                                       tooltip="Start every stopped student lab of the school "
                                               "now, one after another, before the lesson.")
            self.start_result = w.HTML()
            self.start_labs.on_click(lambda _: self._act(self.start_class, None,
                                                         self.start_result))
            children += [w.HTML("<b>The class's labs</b>"), self.labs, self.start_labs,
                         self.start_result]
        return children

    def _read(self) -> dict[str, Any]:
        params: dict[str, Any] = {"window_minutes": self.window_minutes}
        if self.tenant:
            params["tenant"] = self.tenant
        data = {"activity": self.client.get("/api/activity", params=params)}
        if self.can_pause:
            data["pauses"] = self.client.get("/api/pauses")["pauses"]
        if self.can_start_class:
            # From the hub, not the gateway; the rest of the view does not depend on it.
            try:
                data["labs"] = class_status(self.school)
            except GatewayError as error:
                data["labs"] = {"error": str(error)}
        return dict(data)

    def _draw(self, data: dict[str, Any]) -> None:
        import plotly.graph_objects as go

        activity = data["activity"]
        window, budget = activity["window"], activity["budget"]
        minutes = activity["per_minute"]
        last = minutes[-1] if minutes else {"requests": 0, "errors": 0}
        spent, limit = budget.get("spent_usd") or 0.0, budget.get("limit_usd")
        waiting = sum(u.get("waiting", 0) for u in activity["queue"])
        school = budget.get("school")
        self.alert.value = "" if not school or not school.get("alert") else html(
            '<div class="classroom-alert" style="background:#fff3cd;border:1px solid #d39e00;'
            'padding:6px 10px;border-radius:4px;margin:4px 0"><b>{title}</b> {text}</div>',
            title="School budget exhausted:" if school.get("exhausted") else "School budget alert:",
            text=f"{format_cost(school['spent_usd'])} of {format_cost(school['limit_usd'])} spent "
                 f"this month ({school['alert_percent']:g} % alert level); at 100 % the "
                 "school's calls are refused until it resets.")
        self.cards.value = join([
            _card("running now", len(activity["running"])),
            _card("active now", len(activity["active_users"]),
                  f"last {self.window_minutes} min"),
            _card("requests / min", last["requests"], f"{window['requests']} in the window"),
            _card("errors / min", last["errors"], f"{window['errors']} in the window"),
            _card("waiting for a key", waiting),
            _card("cost this month", format_cost(spent),
                  f"of {format_cost(limit)} budget" if limit else "no class budget set"),
        ])
        x = [m["minute"] for m in minutes]
        self.chart.draw([go.Bar(x=x, y=[m["requests"] for m in minutes], name="requests"),
                         go.Bar(x=x, y=[m["errors"] for m in minutes], name="errors")],
                        title=f"Requests and errors per minute (last {self.window_minutes} min)",
                        barmode="overlay", showlegend=True)
        self.budget_chart.draw(
            [go.Bar(x=[spent, limit or 0], y=["spent", "budget"], orientation="h",
                    marker_color=["#d9534f" if limit and spent > limit else "#3b6ea8", "#bbb"])],
            title="Cost this month" + (f" against the class budget of ${limit:.2f}" if limit
                                       else " (no class budget set)"),
            xaxis={"range": [0, max(spent, limit or 0, 0.01) * 1.1]})
        self.running.value = _table(
            ["user", "model", "source", "running for"],
            [[r["user"], r["model"], r["source"], f"{r['elapsed_s']:.0f} s"]
             for r in activity["running"]], "Nothing is running.")
        self.queue.value = _table(
            ["user", "waiting", "running"],
            [[u["user"], u.get("waiting", 0), u.get("running", 0)] for u in activity["queue"]
             if u.get("waiting")], "Nobody is waiting.")
        self.errors.value = _table(
            ["when (UTC)", "user", "model", "error"],
            [[e["at"][11:19], e["user"], e["model"], e["error_code"]]
             for e in activity["recent_errors"][:10]],
            f"No errors in the last {self.window_minutes} minutes.")
        if self.can_pause:
            names = sorted({u["user"] for u in activity["active_users"]}
                           | set(self.student.options))
            self.student.options = names
            self.pauses.value = self._pauses_html(data.get("pauses") or [])
        if self.can_start_class:
            self.labs.value = self._labs_html(data.get("labs") or {})

    @staticmethod
    def _labs_html(labs: dict[str, Any]) -> Safe:
        if "error" in labs:
            return muted(f"The labs' state is not known: {labs['error']}")
        counts = labs.get("counts") or {}
        waiting = [lab for lab in labs.get("labs", []) if lab.get("state") == "waiting"]
        last = max((lab.get("ready_in_s") or 0 for lab in waiting), default=0)
        return html('<div class="classroom-labs">{}</div>', join([
            _card("labs ready", counts.get("ready", 0), f"of {labs.get('students', 0)} students"),
            _card("starting", counts.get("starting", 0)),
            _card("waiting to start", len(waiting),
                  f"all ready in about {last} s" if waiting else ""),
            _card("stopped", counts.get("stopped", 0)),
        ]))

    @staticmethod
    def _pauses_html(pauses: list[dict[str, Any]]) -> Safe:
        if not pauses:
            return muted("Nobody is paused.")
        items = [html("<li>{} (paused by {})</li>",
                      "the whole class of " + p["tenant"] if p.get("user") is None else p["user"],
                      p.get("paused_by") or "?") for p in pauses]
        return html('<div class="classroom-pauses"><b>Paused now:</b><ul>{}</ul></div>',
                    join(items))

    # -- pausing ---------------------------------------------------------------------------

    def _act(self, action: Callable[[str | None], str], user: str | None,
             out: w.HTML | None = None) -> None:
        """A button: do it, redraw at once, and say what was done (or why not)."""
        try:
            done = action(user)
        except (GatewayError, ValueError) as error:
            self.error_box.show(error)
            return
        self.refresh()
        (out or self.message).value = html('<div class="classroom-pause-result">{}</div>', done)

    # -- starting the class's labs ---------------------------------------------------------

    def start_class(self, _user: str | None = None) -> str:
        """Ask the hub to start every stopped student lab of the school; what it did, in words.

        The hub starts them one after another, after any student waiting for
        their own lab right now; the view's refreshes then show them become ready.
        """
        school = self.school
        self.start_result.value = muted("Asking the hub to start the class's labs…")
        self.start_labs.disabled = True
        try:
            result = start_class(school)
        finally:
            self.start_labs.disabled = False
        self.last_start = result
        queued, refused = result.get("queued") or [], result.get("refused") or {}
        counts = result.get("counts") or {}
        words = (f"Asked the hub to start {len(queued)} lab(s) of {school}: they start one "
                 "after another, after any student waiting for their lab now."
                 if queued else f"No lab of {school} needed starting.")
        words += f" {counts.get('ready', 0)} of {result.get('students', 0)} are ready."
        if refused:
            words += " Not started: " + "; ".join(f"{n} ({why})" for n, why in
                                                 sorted(refused.items())) + "."
        return words

    def pause(self, user: str | None = None, reason: str | None = None) -> str:
        """Pause one student (or, with ``user=None``, the whole class); what was done, in words."""
        if user is not None and not user:
            raise ValueError("Type the username of the student to pause.")
        body: dict[str, Any] = {"user": user, "reason": reason}
        if self.tenant:
            body["tenant"] = self.tenant
        self.client.post("/api/pauses", json=body)
        return (f"Paused {user}: their calls wait until you resume them." if user else
                "Paused the whole class: every student's calls wait until you resume.")

    def resume(self, user: str | None = None) -> str:
        """Lift the pause of one student (or of the whole class); what was done, in words."""
        if user is not None and not user:
            raise ValueError("Type the username of the student to resume.")
        pauses = self.client.get("/api/pauses")["pauses"]
        tenant = self.tenant or (self.me or {}).get("tenant")
        found = [p for p in pauses if p.get("user") == user and (user or p["tenant"] == tenant)]
        if not found:
            raise ValueError(f"{user} is not paused." if user else "The class is not paused.")
        for p in found:
            self.client.request("DELETE", f"/api/pauses/{p['id']}")
        return f"Resumed {user}." if user else "Resumed the whole class."


class KeyPoolLive(_LiveView):
    """The key pool, live (admins): leases, load and cool-down per key, and the queues."""

    title = "Key pool now"

    def _build(self) -> list[w.Widget]:
        self.cards = w.HTML()
        self.keys = w.HTML()
        self.queues = w.HTML()
        return [self.cards, w.HTML("<b>Keys</b>"), self.keys,
                w.HTML("<b>Who is waiting</b>"), self.queues]

    def _read(self) -> dict[str, Any]:
        return dict(self.client.get("/api/pool"))

    def _draw(self, pool: dict[str, Any]) -> None:
        keys = pool.get("keys", [])
        cooling = [k for k in keys if (k.get("cooldown_s") or 0) > 0]
        self.cards.value = join([
            _card("keys in rotation", len(keys), f"{len(pool.get('inactive_keys', []))} inactive"),
            _card("leases now", sum(k.get("active_leases", 0) for k in keys)),
            _card("cooling down", len(cooling)),
            _card("waiting", sum((pool.get("queues") or {}).values())),
        ])
        self.keys.value = _table(
            ["provider", "key", "healthy", "leases", "rpm", "cool-down", "queue", "granted"],
            [[k["provider"], f"{k['name']} …{k.get('last4') or ''}",
              "yes" if k.get("healthy") else f"no: {k.get('health_reason') or ''}",
              f"{k.get('active_leases', 0)} / {k.get('concurrency_limit') or '∞'}",
              f"{k.get('rpm_used', 0)} / {k.get('rpm_limit') or '∞'}",
              f"{k['cooldown_s']:.0f} s" if k.get("cooldown_s") else "—",
              k.get("queue_length", 0), k.get("granted_total", 0)] for k in keys],
            "No keys in rotation (the mock provider needs none).")
        self.queues.value = _table(
            ["user", "waiting", "running"],
            [[u["user"], u.get("waiting", 0), u.get("running", 0)]
             for u in pool.get("users", [])], "Nobody is waiting.")
