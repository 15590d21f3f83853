"""The FastMCP server and its tools (see the package docstring)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError

from gateway.mcpserver import encyclopedia
from gateway.mcpserver.calculator import CalculationError, calculate
from gateway.mcpserver.units import UnitError, convert

INSTRUCTIONS = ("The Jupyter AI Classroom's own tools: arithmetic, unit conversion, dates and "
                "times, and a small encyclopedia. All work offline.")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolError(f"Unknown time zone '{name}'; use a name such as UTC, Asia/Seoul or "
                        "Europe/Paris.") from None


def _date(text: str, field: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ToolError(f"{field} '{text}' is not a date written as YYYY-MM-DD.") from None


def build_server(host: str = "127.0.0.1", port: int = 8765,
                 clock: Callable[[], dt.datetime] | None = None) -> FastMCP:
    """The server, not started; ``clock`` gives "now" (aware, UTC) for tests."""
    now_utc = clock or (lambda: dt.datetime.now(dt.UTC))
    server = FastMCP("classroom", instructions=INSTRUCTIONS, host=host, port=port,
                     stateless_http=True, json_response=True)

    @server.tool()
    def calculator(expression: str) -> dict[str, Any]:
        """Evaluate an arithmetic expression, e.g. "2 * (3 + 4) ** 2" or "sqrt(2) / 3".
        Knows + - * / // % ** (or ^), parentheses, sqrt, sin, cos, tan, log, exp, abs,
        round, floor, ceil, factorial, min, max, pi and e."""
        try:
            return {"expression": expression, "value": calculate(expression)}
        except CalculationError as exc:
            raise ToolError(str(exc)) from None

    @server.tool()
    def convert_units(value: float, from_unit: str, to_unit: str) -> dict[str, Any]:
        """Convert a value between units of length, mass, volume, time, speed, area, data
        or temperature, e.g. 5 km to mi, 100 F to C, 2 GiB to MB."""
        try:
            result = convert(value, from_unit, to_unit)
        except UnitError as exc:
            raise ToolError(str(exc)) from None
        return {"value": value, "from": from_unit, "to": to_unit, "result": result}

    @server.tool()
    def current_time(timezone: str = "UTC") -> dict[str, Any]:
        """The current date and time in a time zone (an IANA name such as Asia/Seoul)."""
        moment = now_utc().astimezone(_zone(timezone))
        return {"timezone": timezone, "iso": moment.isoformat(timespec="seconds"),
                "date": moment.date().isoformat(), "time": moment.strftime("%H:%M:%S"),
                "weekday": moment.strftime("%A")}

    @server.tool()
    def date_difference(start: str, end: str) -> dict[str, Any]:
        """The number of days from one date to another (dates as YYYY-MM-DD)."""
        first, last = _date(start, "start"), _date(end, "end")
        return {"start": start, "end": end, "days": (last - first).days,
                "weeks": round((last - first).days / 7, 2)}

    @server.tool()
    def add_days(date: str, days: int) -> dict[str, Any]:
        """The date a number of days after (or, negative, before) a date (YYYY-MM-DD)."""
        if abs(days) > 3_650_000:
            raise ToolError("At most 3,650,000 days either way.")
        try:
            result = _date(date, "date") + dt.timedelta(days=days)
        except OverflowError:
            raise ToolError("That date is out of range.") from None
        return {"date": date, "days": days, "result": result.isoformat(),
                "weekday": result.strftime("%A")}

    @server.tool()
    def encyclopedia_lookup(topic: str) -> dict[str, Any]:
        """The encyclopedia's entry on a topic (e.g. "tool calling", "Ada Lovelace")."""
        text = encyclopedia.lookup(topic)
        if text is None:
            related = [hit["topic"] for hit in encyclopedia.search(topic)]
            raise ToolError(f"No entry on '{topic}'."
                            + (f" Related: {', '.join(related)}." if related else ""))
        return {"topic": topic, "text": text}

    @server.tool()
    def encyclopedia_search(query: str) -> dict[str, Any]:
        """Up to three encyclopedia entries that share the most words with the query."""
        return {"query": query, "results": encyclopedia.search(query)}

    return server
