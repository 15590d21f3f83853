"""Charts for the widgets: a plotly ``FigureWidget``, redrawn in place.

``FigureWidget`` needs the ``anywidget`` package; where it is missing the
same figure is shown as a static plotly figure in an ``Output``, so a chart
never breaks a widget.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import ipywidgets as w


class Chart:
    """A plotly figure inside a widget: ``chart.widget`` to show, ``chart.draw(...)`` to change."""

    def __init__(self, height: int = 380) -> None:
        import plotly.graph_objects as go

        layout = {"height": height, "margin": {"l": 40, "r": 20, "t": 40, "b": 40}}
        try:
            self.figure: Any = go.FigureWidget(layout=layout)
            self.widget: w.Widget = self.figure
            self.live = True
        except ImportError:
            self.figure = go.Figure(layout=layout)
            self.widget = w.Output()
            self.live = False

    def draw(self, traces: Sequence[Any], **layout: Any) -> None:
        """Replace the figure's traces and update its layout."""
        if self.live:
            with self.figure.batch_update():
                self.figure.data = []
                for trace in traces:
                    self.figure.add_trace(trace)
                self.figure.update_layout(**layout)
            return
        import plotly.graph_objects as go

        self.figure = go.Figure(data=list(traces), layout=self.figure.layout)
        self.figure.update_layout(**layout)
        from IPython.display import display

        assert isinstance(self.widget, w.Output)
        self.widget.clear_output(wait=True)
        with self.widget:
            display(self.figure)
