"""Run code in a kernel of a real, remote Jupyter server over its websocket API.

Used to execute lesson notebooks inside a student's own spawned lab, so they
run with that student's environment and token, exactly as in class.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
import nbformat
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


class CellError(AssertionError):
    pass


@dataclass
class CellResult:
    source: str
    outputs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def text(self) -> str:
        parts = []
        for out in self.outputs:
            if out["type"] == "stream":
                parts.append(out["text"])
            elif out["type"] in ("execute_result", "display_data"):
                parts.append(out["data"].get("text/plain", ""))
        return "".join(parts)


class RemoteKernel:
    """One kernel on a Jupyter server reached through the hub's proxy."""

    def __init__(self, server_url: str, token: str) -> None:
        self.server_url = server_url.rstrip("/")
        self.token = token
        self.kernel_id: str | None = None
        self.session = uuid.uuid4().hex
        self.session_id: str | None = None
        self._ws: Any = None
        self._attached = False

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}"}

    async def start(self, name: str = "python3", cwd: str | None = None,
                    kernel_id: str | None = None) -> None:
        """Start a new kernel, or attach to the running ``kernel_id`` (a notebook's, say)."""
        if kernel_id is not None:
            self.kernel_id, self._attached = kernel_id, True
        else:
            async with httpx.AsyncClient(timeout=60) as client:
                body: dict[str, Any] = {"name": name}
                if cwd:
                    body["path"] = cwd
                response = await client.post(
                    f"{self.server_url}/api/kernels", json=body, headers=self._headers()
                )
                response.raise_for_status()
                self.kernel_id = response.json()["id"]
        ws_url = self.server_url.replace("http", "ws", 1) + f"/api/kernels/{self.kernel_id}/channels"
        self._ws = await websocket_connect(
            HTTPRequest(ws_url, headers=self._headers()), max_message_size=64 * 1024 * 1024
        )

    async def open_notebook(self, path: str) -> None:
        """Start a kernel for the notebook at ``path`` as JupyterLab does (``POST
        /api/sessions``), so the kernel knows its notebook (``JPY_SESSION_NAME``)."""
        async with httpx.AsyncClient(timeout=60) as client:
            response = await client.post(f"{self.server_url}/api/sessions", headers=self._headers(),
                                         json={"path": path, "name": path.rsplit("/", 1)[-1],
                                               "type": "notebook", "kernel": {"name": "python3"}})
            response.raise_for_status()
            self.session_id = response.json()["id"]
        await self.start(kernel_id=response.json()["kernel"]["id"])
        self._attached = False  # ours: shut down (with its session) afterwards

    async def shutdown(self) -> None:
        if self._ws is not None:
            self._ws.close()
        if self.session_id:
            async with httpx.AsyncClient(timeout=30) as client:
                await client.delete(f"{self.server_url}/api/sessions/{self.session_id}",
                                    headers=self._headers())
            return
        if self.kernel_id and not self._attached:  # an attached kernel is left running
            async with httpx.AsyncClient(timeout=30) as client:
                await client.delete(
                    f"{self.server_url}/api/kernels/{self.kernel_id}", headers=self._headers()
                )

    async def execute(self, code: str, timeout: float = 120, cell_id: str | None = None
                      ) -> CellResult:
        """Run ``code``; ``cell_id`` is sent in the request's metadata, as JupyterLab does."""
        msg_id = uuid.uuid4().hex
        await self._ws.write_message(json.dumps({
            "header": {"msg_id": msg_id, "username": "test", "session": self.session,
                       "msg_type": "execute_request", "version": "5.3"},
            "parent_header": {}, "metadata": {"cellId": cell_id} if cell_id else {},
            "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True,
                        "user_expressions": {}, "allow_stdin": False, "stop_on_error": True},
        }))
        result = CellResult(code)
        idle = replied = False
        error: dict[str, Any] | None = None

        async def pump() -> None:
            nonlocal idle, replied, error
            while not (idle and replied):
                raw = await self._ws.read_message()
                if raw is None:
                    raise ConnectionError("kernel websocket closed")
                if isinstance(raw, bytes):
                    continue  # binary frames carry widget buffers; not needed here
                msg = json.loads(raw)
                if msg.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = msg["msg_type"], msg["content"]
                if kind == "status" and content["execution_state"] == "idle":
                    idle = True
                elif kind == "execute_reply":
                    replied = True
                    if content["status"] == "error":
                        error = content
                elif kind == "stream":
                    result.outputs.append({"type": "stream", "text": content["text"]})
                elif kind in ("execute_result", "display_data"):
                    result.outputs.append({"type": kind, "data": content["data"]})
                elif kind == "error":
                    error = content

        await asyncio.wait_for(pump(), timeout)
        if error is not None:
            trace = "\n".join(error.get("traceback", []))
            raise CellError(f"{error.get('ename')}: {error.get('evalue')}\n{trace}\n--- cell ---\n{code}")
        return result

    async def run_notebook(self, path: str, timeout_per_cell: float = 180) -> list[CellResult]:
        notebook = nbformat.read(path, as_version=4)
        results = []
        for cell in notebook.cells:
            if cell.cell_type == "code" and cell.source.strip():
                results.append(await self.execute(cell.source, timeout_per_cell,
                                                  cell_id=cell.get("id")))
        return results
