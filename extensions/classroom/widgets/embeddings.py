"""``Embeddings()``: turn texts into vectors, see them on a map, find the nearest ones.

An embedding model turns a text into a long list of numbers (a vector) so
that texts with similar meanings get similar vectors. The widget embeds a
list of texts, draws them in 2-D (a PCA projection of the vectors) and, for a
query, lists the texts whose vectors are closest (cosine similarity)::

    emb = Embeddings(texts=["cat", "kitten", "car"], model="mock/embed")
    emb.embed()                    # waits; the vectors are in emb.vectors
    emb.nearest("a small cat")     # [(text, similarity), ...] best first
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as w

from gateway.safehtml import html, join

from .._client import GatewayClient
from .._mock import substitute
from .._vectors import nearest, pca_2d
from ._base import ClassroomWidget, stat_line
from ._charts import Chart

EXAMPLE_TEXTS = (
    "The cat sleeps on the sofa.",
    "A kitten is playing with a ball of wool.",
    "Dogs love to run in the park.",
    "The stock market fell sharply today.",
    "Investors are worried about interest rates.",
    "Photosynthesis turns sunlight into chemical energy.",
)


class Embeddings(ClassroomWidget):
    """Embed a list of texts, see them in 2-D, and search them by meaning."""

    title = "Embeddings"
    feature = "embeddings"

    def __init__(
        self,
        texts: Sequence[str] | None = None,
        model: str | None = None,
        *,
        client: GatewayClient | None = None,
    ) -> None:
        self._initial = (list(texts or EXAMPLE_TEXTS), model)
        self.texts: list[str] = []
        self.vectors: list[list[float]] = []
        self.points: list[tuple[float, float]] = []
        self.model_used: str | None = None
        self.matches: list[tuple[str, float]] = []
        super().__init__(client=client)

    def _build(self) -> list[w.Widget]:
        texts, model = self._initial
        self.model_picker = w.Dropdown(description="Model", options=[],
                                       layout=w.Layout(width="auto", min_width="320px"))
        self.texts_box = w.Textarea(value="\n".join(texts), description="Texts", rows=7,
                                    placeholder="One text per line",
                                    layout=w.Layout(width="100%"))
        self.embed_button = w.Button(description="Embed", button_style="primary",
                                     icon="project-diagram")
        self.info = w.HTML()
        self.chart = Chart()
        self.query_box = w.Text(description="Query", placeholder="Search the texts by meaning",
                                layout=w.Layout(width="100%"))
        self.k = w.IntSlider(value=3, min=1, max=10, description="k")
        self.search_button = w.Button(description="Nearest", icon="search")
        self.neighbours = w.HTML()
        self.embed_button.on_click(lambda _: self._start(self._embed_work(), "Embedding…"))
        self.search_button.on_click(
            lambda _: self._start(self._search_work(str(self.query_box.value)), "Searching…"))
        self._refresh_models(prefer=model)
        return [self.model_picker, self.texts_box, self.embed_button, self.info,
                self.chart.widget, self.query_box, w.HBox([self.k, self.search_button]),
                self.neighbours]

    def _controls(self) -> list[w.Widget]:
        return [self.embed_button, self.search_button, self.model_picker]

    def _refresh_models(self, prefer: str | None = None) -> None:
        self._set_options(self.model_picker, self.model_options("embedding"), prefer)

    @property
    def model(self) -> str:
        return substitute(str(self.model_picker.value or "mock/embed"), "embedding")

    def embed(self, texts: Sequence[str] | None = None, timeout: float | None = None
              ) -> list[list[float]]:
        """Embed ``texts`` (default: the text box, one per line); wait; return the vectors."""
        self._require_enabled()
        if texts is not None:
            self.texts_box.value = "\n".join(texts)
        self._run_and_wait(self._embed_work(), "Embedding…", timeout)
        return self.vectors

    def nearest(self, query: str, k: int | None = None, timeout: float | None = None
                ) -> list[tuple[str, float]]:
        """The ``k`` texts closest in meaning to ``query``: ``[(text, similarity), ...]``."""
        self._require_enabled()
        if k is not None:
            self.k.value = k
        self.query_box.value = query
        self._run_and_wait(self._search_work(query), "Searching…", timeout)
        return self.matches

    def _embed_work(self) -> Any:
        texts = [line.strip() for line in str(self.texts_box.value).splitlines() if line.strip()]
        model = self.model

        def work() -> None:
            if len(texts) < 2:
                raise ValueError("Write at least two texts, one per line.")
            vectors = self.client.embed(texts, model=model)
            self.texts, self.vectors, self.model_used = texts, vectors, model
            self.points = pca_2d(vectors)
            self._draw()
            self.info.value = stat_line(f"{len(texts)} texts", f"{len(vectors[0])} numbers each",
                                        model)

        return work

    def _search_work(self, query: str) -> Any:
        k = int(self.k.value)

        def work() -> None:
            if not query.strip():
                raise ValueError("Type a query first.")
            if not self.vectors:
                self._embed_work()()
            model = self.model_used or self.model
            [query_vector] = self.client.embed([query], model=model)
            found = nearest(query_vector, self.vectors, k)
            self.matches = [(self.texts[i], score) for i, score in found]
            rows = join(
                html("<tr><td>{}</td><td>{}</td><td>{:.3f}</td></tr>", rank, text, score)
                for rank, (text, score) in enumerate(self.matches, 1))
            self.neighbours.value = html(
                '<table class="classroom-neighbours"><tr><th>#</th><th>text</th>'
                "<th>cosine similarity</th></tr>{}</table>", rows)
            self._draw(query)

        return work

    def _draw(self, query: str | None = None) -> None:
        import plotly.graph_objects as go

        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        best = {text for text, _ in self.matches} if query else set()
        colours = ["#d62728" if t in best else "#1f77b4" for t in self.texts]
        traces = [go.Scatter(x=xs, y=ys, mode="markers+text", text=[_label(t) for t in self.texts],
                             textposition="top center", marker={"size": 11, "color": colours},
                             hovertext=self.texts, hoverinfo="text", name="texts")]
        title = "Your texts, projected to 2-D (closer = more similar in meaning)"
        if query:
            title += f" · nearest to “{_label(query)}” in red"
        self.chart.draw(traces, title={"text": title, "font": {"size": 13}}, showlegend=False,
                        xaxis={"title": "component 1"}, yaxis={"title": "component 2"})


def _label(text: str, limit: int = 28) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
