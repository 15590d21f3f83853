"""Playground runs written out as JSON, Markdown or CSV, and words compared between answers."""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.safehtml import Safe, escape, html, join

FORMATS = {"json": "application/json", "markdown": "text/markdown", "csv": "text/csv"}
EXTENSIONS = {"json": "json", "markdown": "md", "csv": "csv"}
CSV_COLUMNS = (
    "iteration", "model", "text", "prompt_tokens", "completion_tokens", "latency_s",
    "cost_usd", "finish_reason", "error",
)


def export_run(run: Mapping[str, Any], fmt: str) -> str:
    """``run`` (see ``Playground.run_record``) as ``json``, ``markdown`` or ``csv`` text."""
    fmt = fmt.lower()
    if fmt == "md":
        fmt = "markdown"
    if fmt == "json":
        return json.dumps(run, ensure_ascii=False, indent=2)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for result in run.get("results", []):
            writer.writerow({"model": run.get("model"), **result})
        return out.getvalue()
    if fmt == "markdown":
        return _markdown(run)
    raise ValueError(f"unknown export format {fmt!r}: use one of {', '.join(FORMATS)}")


def _markdown(run: Mapping[str, Any]) -> str:
    lines = [f"# Playground run: {run.get('model')}", ""]
    if run.get("created_at"):
        lines += [f"Run at {run['created_at']}.", ""]
    if run.get("system"):
        lines += ["## System prompt", "", _quote(str(run["system"])), ""]
    lines += ["## Prompt", "", _quote(str(run.get("prompt", ""))), "", "## Parameters", ""]
    lines += ["| parameter | value |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in (run.get("parameters") or {}).items()]
    lines += ["", "## Results", ""]
    lines += ["| # | tokens (prompt + completion) | latency | cost | finish |",
              "| --- | --- | --- | --- | --- |"]
    for r in run.get("results", []):
        lines.append(
            f"| {r.get('iteration')} | {r.get('prompt_tokens')} + {r.get('completion_tokens')} "
            f"| {r.get('latency_s')} s | {r.get('cost_usd')} | {r.get('finish_reason') or ''} |"
        )
    for r in run.get("results", []):
        lines += ["", f"### Iteration {r.get('iteration')}", ""]
        lines.append(f"Error: {r['error']}" if r.get("error") else str(r.get("text", "")))
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.splitlines() or [""])


_WORD = re.compile(r"\S+|\s+")


def highlight_differences(reference: str, text: str) -> Safe:
    """``text`` as HTML, with the words that are not in ``reference`` marked."""
    ref_words = _WORD.findall(reference)
    words = _WORD.findall(text)
    matcher = difflib.SequenceMatcher(a=ref_words, b=words, autojunk=False)
    parts: list[Safe] = []
    for tag, _, _, j1, j2 in matcher.get_opcodes():
        chunk = "".join(words[j1:j2])
        if tag == "equal" or not chunk.strip():
            parts.append(escape(chunk))
        else:
            parts.append(html('<mark class="classroom-diff">{}</mark>', chunk))
    return join(parts)


def similarity(texts: Sequence[str]) -> float:
    """How alike the answers are, 0 (nothing shared) to 1 (identical), averaged over pairs."""
    if len(texts) < 2:
        return 1.0
    ratios = []
    for i in range(len(texts)):
        for j in range(i + 1, len(texts)):
            ratios.append(
                difflib.SequenceMatcher(a=texts[i].split(), b=texts[j].split()).ratio()
            )
    return sum(ratios) / len(ratios)
