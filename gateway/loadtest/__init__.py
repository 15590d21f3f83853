"""The load tester and capacity planner: know before class whether the keys will hold.

- :mod:`~gateway.loadtest.plans`: plans (YAML/JSON) and their checks;
- :mod:`~gateway.loadtest.runner`: simulated users calling the real pipeline, cost cap;
- :mod:`~gateway.loadtest.manager`: the gateway's live and stored runs;
- :mod:`~gateway.loadtest.stats` and :mod:`~gateway.loadtest.reports`: figures, grades,
  charts and the HTML report;
- :mod:`~gateway.loadtest.lessons` and :mod:`~gateway.loadtest.simulate`: lesson replay,
  a discrete-event simulation of the pool, and the smallest key configuration;
- :mod:`~gateway.loadtest.store`: the tables in the history database.

Plain Python: the FastAPI layer is :mod:`gateway.api.loadtests`.
"""

from gateway.loadtest.manager import LoadTests
from gateway.loadtest.plans import LoadPlan, PlanError, load_plan_text, parse_plan
from gateway.loadtest.reports import build_report, report_html
from gateway.loadtest.simulate import KeyLimits, Step, plan_keys, simulate

__all__ = [
    "KeyLimits", "LoadPlan", "LoadTests", "PlanError", "Step", "build_report", "load_plan_text",
    "parse_plan", "plan_keys", "report_html", "simulate",
]
