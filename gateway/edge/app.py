"""The gateway application: ``create_app(settings)`` builds it; nothing global.

Routers are thin; the services they use are built in the lifespan by the
composition root (:func:`gateway.composition.build_services`) and kept on
``app.state.services``.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from gateway.api import (
    admin,
    anthropic_native,
    artifacts,
    classroom,
    conversations,
    experiments,
    google_native,
    jobs,
    loadtests,
    mcp_connections,
    media,
    memory,
    openai_compat,
    own_keys,
    pool,
    suno,
    usage,
)
from gateway.composition import Services, build_services
from gateway.config.reload import SIGNAL_ACTOR
from gateway.config.settings import Settings
from gateway.edge.asgi import (
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
    error_response,
    face_of_path,
    unexpected_error,
)
from gateway.edge.fastpath import FastChat
from gateway.edge.origin import calls_from, origin_of_scope
from gateway.edge.schemas import describe_errors
from gateway.errors import ClassroomError, InvalidRequest, NotFound, PayloadTooLarge
from gateway.history.audit import follow_hub_audit, import_hub_audit
from gateway.history.retention import run_retention
from gateway.keypool import ProviderKey
from gateway.pricing.tokens import warm

log = logging.getLogger("gateway")


async def database_problem(engine: Engine, timeout: float = 3.0) -> str | None:
    """Why the database cannot be reached (None: ``SELECT 1`` answered in time)."""
    def ping() -> None:
        with engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    try:
        await asyncio.wait_for(asyncio.to_thread(ping), timeout)
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return type(exc).__name__
    return None


def _persist_health(services: Services) -> Callable[[ProviderKey, bool, str | None], None]:
    """Key health decided by the pool (a 401 from the provider) is kept across restarts."""
    tasks: set[asyncio.Task[Any]] = set()

    def persist(key: ProviderKey, healthy: bool, reason: str | None) -> None:
        store = services.keystore
        if store is None:
            return

        def write(conn: Any) -> None:
            store.set_state(conn, key.provider, key.name, healthy=healthy, reason=reason)

        task = asyncio.get_running_loop().create_task(services.history.write(write))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    return persist


def _reload_on_sighup(services: Services) -> Callable[[], None]:
    """SIGHUP reloads the configuration (as ``POST /api/admin/reload`` does), when the
    gateway owns the process's signals (served by uvicorn, not inside a test client).
    Returns the function that stops listening."""
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[Any]] = set()

    async def reload() -> None:
        try:
            await services.config.reload(SIGNAL_ACTOR)
        except ClassroomError:
            pass  # logged and audited by the reloader; the running configuration is kept

    def on_signal() -> None:
        task = loop.create_task(reload())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, on_signal)
    except (ValueError, RuntimeError, NotImplementedError):  # not the main thread
        return lambda: None

    def stop() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return stop


def face_of(request: Request) -> str:
    return face_of_path(request.url.path, request.scope.get("root_path", ""))


class Edge:
    """ASGI edge: strip the hub's service prefix and refuse oversized bodies early."""

    def __init__(self, app: ASGIApp, prefix: str, max_body: int) -> None:
        self.app = app
        self.prefix = prefix.rstrip("/")
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if self.prefix and (path == self.prefix or path.startswith(self.prefix + "/")):
            # ASGI mount semantics: full path, root_path names the mount point.
            scope = dict(scope, root_path=scope.get("root_path", "") + self.prefix)
            if path == self.prefix:
                scope["path"] = self.prefix + "/"
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None and length.isdigit() and int(length) > self.max_body:
            face = face_of_path(scope["path"], scope.get("root_path", ""))
            await error_response(self._too_large(), face)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body:
                    raise self._too_large()
            return message

        with calls_from(origin_of_scope(scope)):
            await self.app(scope, limited_receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"The request is larger than {self.max_body // (1024 * 1024)} MiB. "
            "Send a smaller image or a shorter text."
        )


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services or build_services(settings)
        await built.admission.load()
        await built.loadtests.ready()
        built.pool.on_health = _persist_health(built)
        await built.pool.start()
        interrupted = await built.history.mark_interrupted()
        if interrupted:
            log.warning("%d run(s) left running by a previous gateway marked interrupted",
                        interrupted)
        await built.jobs.start()
        await built.suno.start()
        app.state.services = built
        app.state.started = time.time()
        data_dir = built.settings.data_dir
        await built.history.write(lambda conn: import_hub_audit(conn, data_dir))
        loop = asyncio.get_running_loop()
        if any(key.provider == "openai" for key in built.pool.keys):
            # The chat models' tokenizer (reservations count with it) takes ~0.5 s to load:
            # not on the loop. Others (embeddings') load when first needed.
            chat = [m for m in built.providers.catalog.models.values() if m.kind == "chat"]
            loop.run_in_executor(None, warm, chat)
        background = [
            loop.create_task(run_retention(built.history, built.settings.data_dir)),
            loop.create_task(follow_hub_audit(built.history, built.settings.data_dir)),
        ]
        hangup = _reload_on_sighup(built)
        try:
            yield
        finally:
            hangup()
            for task in background:
                task.cancel()
            await built.loadtests.close()
            await built.jobs.aclose()
            await built.chat.drain()
            await built.resolver.aclose()
            await built.providers.aclose()
            await built.pool.aclose()
            built.history.close()

    app = FastAPI(
        title="Jupyter AI Classroom gateway",
        version="0.1.0",
        description="One gateway for every provider call of the classroom: OpenAI-compatible "
        "and vendor-native faces, identity from the hub, history of every call.",
        lifespan=lifespan,
    )
    for module in (
        openai_compat, media, anthropic_native, google_native, classroom, conversations, jobs,
        artifacts, usage, admin, pool, loadtests, suno, mcp_connections, memory, own_keys,
        experiments,
    ):
        app.include_router(module.router)

    @app.get("/health", tags=["Operations"], summary="Liveness and basic facts",
             responses={503: {"description": "with ready=true: the database or the pool's "
                                       "Redis is unreachable"}})
    async def health(request: Request, ready: bool = False) -> Any:
        """Liveness: the process answers. With ``ready=true`` (a Kubernetes readiness
        probe) it also asks the history database for ``SELECT 1`` (and the pool's Redis,
        when it has one, for ``PING``) and answers 503 when that fails, so a replica that
        lost its database or its Redis takes no calls meanwhile."""
        svc: Services = request.app.state.services
        if ready:
            problem = await database_problem(svc.history.engine)
            pool_problem = await svc.pool.problem()  # the pool's Redis, when it has one
            if problem is not None or pool_problem is not None:
                down = {"status": "unavailable", "database": problem}
                return JSONResponse(status_code=503, content=down | (
                    {"pool": pool_problem} if pool_problem else {}))
        return {
            "status": "ok",
            "uptime_s": round(time.time() - request.app.state.started, 1),
            "providers": sorted(svc.providers.providers),
            "tenants": sorted(svc.tenants),
            "catalog_version": svc.providers.catalog.version,
        }

    @app.get("/metrics", tags=["Operations"], response_class=PlainTextResponse)
    async def metrics(request: Request) -> str:
        svc: Services = request.app.state.services
        counts = await svc.history.status_counts()
        lines = [
            "# HELP classroom_gateway_runs Provider calls recorded in history, by status.",
            "# TYPE classroom_gateway_runs gauge",
        ]
        lines += [f'classroom_gateway_runs{{status="{s}"}} {n}' for s, n in sorted(counts.items())]
        lines += [
            "# HELP classroom_gateway_uptime_seconds Seconds since the gateway started.",
            "# TYPE classroom_gateway_uptime_seconds gauge",
            f"classroom_gateway_uptime_seconds {time.time() - request.app.state.started:.1f}",
        ]
        return "\n".join(lines) + "\n"

    @app.exception_handler(ClassroomError)
    async def _classroom_error(request: Request, exc: ClassroomError) -> JSONResponse:
        return error_response(exc, face_of(request))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = describe_errors(exc.errors())
        error = InvalidRequest(message, param=field)
        if face_of(request) != "openai":
            return error_response(error, face_of(request))
        return JSONResponse(error.to_openai(), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound("There is no such endpoint. See /docs for the API."),
                                  face_of(request))
        detail = str(exc.detail)
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            detail = ("The request body could not be read: send one JSON object, as UTF-8 text "
                      "(not nested hundreds of levels deep).")
        error = InvalidRequest(detail)
        if face_of(request) != "openai" and exc.status_code == 400:
            return error_response(error, face_of(request))
        body = error.to_openai()
        code = "method_not_allowed" if exc.status_code == 405 else "invalid_request"
        body["error"]["code"] = code
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(unexpected_error(), face_of(request))

    return app


def create_asgi(settings: Settings, services: Services | None = None) -> ASGIApp:
    """The app wrapped in its edge middleware: what uvicorn serves."""
    return Edge(FastChat(create_app(settings, services)), settings.service_prefix,
                settings.max_body_bytes)
