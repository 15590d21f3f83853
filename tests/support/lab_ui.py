"""Drive the classroom as people do, in a real browser (Playwright's sync API).

- :func:`sign_in`: the hub's login form, then wherever ``next`` points;
- :func:`run_all`: open a notebook in the user's own JupyterLab, *Run > Run All Cells*,
  wait until every code cell has run, and return what the outputs show;
- :func:`script_ran`: what a planted payload would have left (the flag it sets on
  ``window``, an element carrying a planted handler, a ``javascript:`` link);
- :func:`in_kernel`: run code in a lab's kernel (a new one, or a notebook's own);
- :func:`shut_down_kernels`: stop a lab's kernels by id (Voila and closed tabs leave them).
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from tests.support.hub import Hub
from tests.support.kernel import RemoteKernel
from tests.support.procs import ARTIFACTS, wait_until

FLAG = "__cx"  # every planted payload would set window.__cx


def payloads(tag: str) -> list[str]:
    """Script-bearing text a student can type anywhere; each would set ``window.__cx``."""
    return [
        f'<img src=x onerror="window.{FLAG}=\'{tag}-img\'">',
        f"<script>window.{FLAG}='{tag}-script'</script>",
        f'<a href="javascript:window.{FLAG}=\'{tag}-link\'">click me</a>',
        f'<svg onload="window.{FLAG}=\'{tag}-svg\'"><circle r="4"/></svg>',
        f"[a markdown link](javascript:window.{FLAG}='{tag}-md')",
        f'![a markdown image](x" onerror="window.{FLAG}=\'{tag}-mdimg\')',
    ]


def sign_in(page: Any, hub: Hub, username: str, password: str, next_url: str = "") -> None:
    page.goto(f"{hub.url}/hub/login?next={quote(next_url)}", wait_until="domcontentloaded")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("[type=submit]")
    page.wait_for_load_state("domcontentloaded")


@dataclass
class Ran:
    text: str  # the notebook's visible text, outputs included
    stderr: str  # every stderr output (tracebacks land here)
    plots: int  # plotly charts drawn (an SVG inside each)


_ALL_RAN = """() => {
  const prompts = [...document.querySelectorAll(
    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
  // textContent: JupyterLab skips rendering cells out of view, and innerText with them.
  const ran = prompts.length > 0 && prompts.every(p => /^\\[\\d+\\]:$/.test(p.textContent.trim()));
  // Run All stops at a cell that raised: that is an answer too (the caller shows it).
  const raised = [...document.querySelectorAll(
    "[data-mime-type='application/vnd.jupyter.stderr']")]
    .some(e => /Traceback/.test(e.textContent));
  const busy = prompts.some(p => /^\\[\\*\\]:$/.test(p.textContent.trim()));
  return ran || (raised && !busy);
}"""
_IDLE = """() => !!document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]')
  || /Idle/.test(
    document.querySelector('.jp-StatusBar-Widget, #jp-main-statusbar')?.innerText || '')"""


def kernel_of(hub: Hub, username: str, token: str, path: str) -> dict[str, Any] | None:
    """The kernel of the notebook session at ``path`` in ``username``'s server, if any."""
    sessions = requests.get(f"{hub.url}/user/{username}/api/sessions", timeout=30,
                            headers={"Authorization": f"token {token}"})
    for session in sessions.json() if sessions.ok else []:
        if session.get("path") == path and session.get("kernel"):
            return dict(session["kernel"])
    return None


def run_all(page: Any, hub: Hub, username: str, token: str, path: str,
            timeout_s: float = 240) -> Ran:
    """Open ``path`` in ``username``'s JupyterLab (fresh layout), run every cell, wait."""
    page.goto(f"{hub.url}/user/{username}/lab/tree/{quote(path)}?reset",
              wait_until="domcontentloaded")
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(timeout=timeout_s * 1000)
    accept = page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept")

    def kernel_ready() -> bool:
        # Under load JupyterLab may ask which kernel to start: the notebook's own.
        if accept.count():
            accept.first.click()
        return (kernel_of(hub, username, token, path) or {}).get("execution_state") == "idle"

    wait_until(kernel_ready, timeout_s, f"the kernel of {path}")
    try:
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        page.wait_for_function(_ALL_RAN, timeout=timeout_s * 1000)
        page.wait_for_function(_IDLE, timeout=timeout_s * 1000)
    except Exception:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        name = f"run_all_failed_{username}_{path.replace('/', '_')}.png"
        page.screenshot(path=str(ARTIFACTS / name))
        raise
    return outputs(page, ".jp-NotebookPanel:not(.lm-mod-hidden)")


def outputs(page: Any, root: str = "body") -> Ran:
    """What the outputs under ``root`` say (their text, also of cells scrolled out of view)."""
    text = "\n".join(page.locator(f"{root} .jp-OutputArea-output").all_text_contents())
    stderr = "\n".join(page.locator(
        f"{root} [data-mime-type='application/vnd.jupyter.stderr']").all_text_contents())
    plots = page.locator(f"{root} .js-plotly-plot .main-svg").count()
    return Ran(text, stderr, plots)


_SCRIPT_TRACES = """(flag) => {
  const found = [];
  if (window[flag] !== undefined) found.push('window.' + flag + ' = ' + window[flag]);
  for (const el of document.querySelectorAll('*')) {
    for (const attr of el.getAttributeNames()) {
      const value = el.getAttribute(attr) || '';
      if (!value.includes(flag)) continue;
      if (attr.startsWith('on') || /^\\s*javascript:/i.test(value) || attr === 'srcdoc')
        found.push('<' + el.tagName.toLowerCase() + ' ' + attr + '="' + value + '">');
    }
    if (el.tagName === 'SCRIPT' && (el.textContent || '').includes(flag))
      found.push('<script>' + el.textContent + '</script>');
  }
  return found;
}"""


def script_ran(page: Any) -> list[str]:
    """Traces a planted payload left in the page (empty: it stayed text)."""
    return list(page.evaluate(_SCRIPT_TRACES, FLAG))


def in_kernel(hub: Hub, user: str, token: str, code: str, kernel_id: str | None = None) -> str:
    """``code`` in a new kernel of ``user``'s lab, or in the running ``kernel_id``; its text.

    Playwright's sync API owns this thread's event loop: the kernel client runs beside it.
    """
    async def run() -> str:
        kernel = RemoteKernel(f"{hub.url}/user/{user}", token)
        await kernel.start(kernel_id=kernel_id)
        try:
            return (await kernel.execute(code)).text
        finally:
            await kernel.shutdown()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result(timeout=180)


def shut_down_kernels(hub: Hub, token: str, user: str) -> None:
    """Voila and closed tabs leave kernels running: stop them by id."""
    url = f"{hub.url}/user/{user}/api/kernels"
    headers = {"Authorization": f"token {token}"}
    try:
        kernels = requests.get(url, headers=headers, timeout=30)
        for kernel in kernels.json() if kernels.ok else []:
            requests.delete(f"{url}/{kernel['id']}", headers=headers, timeout=30)
    except requests.RequestException:
        pass
