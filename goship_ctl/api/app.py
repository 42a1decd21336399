"""``create_app``: the FastAPI application around a ControlService."""

from __future__ import annotations

import functools
import time
from http import HTTPStatus
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from goship_ctl import __version__
from goship_ctl.api import routes_admin, routes_projects
from goship_ctl.api.auth import principal
from goship_ctl.api.models import ErrorBody
from goship_ctl.auth.principal import Principal
from goship_ctl.auth.ratelimit import FailureLimiter
from goship_ctl.errors import BadRequest, ControlError, Invalid, TooManyFailures, Unauthorized
from goship_ctl.metrics import CONTENT_TYPE, Metrics
from goship_ctl.service.control import ControlService
from goship_ctl.spec.node import NodeSpec
from goship_ctl.spec.problems import field_path
from goship_ctl.spec.project import ProjectDocument

API_PREFIX = "/api/v1"
DOCUMENT_SCHEMAS = {"ProjectDocument": ProjectDocument, "NodeSpec": NodeSpec, "Error": ErrorBody}
ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
# FastAPI's own 422 body ({"detail": [...]}), which the API never sends: dropped from the document.
FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")
HTTP_ERROR_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                    405: "method_not_allowed", 409: "conflict", 413: "too_large",
                    415: "unsupported_media_type", 422: "invalid", 429: "rate_limited"}


def create_app(service: ControlService, metrics: Metrics | None = None,
               limiter: FailureLimiter | None = None) -> FastAPI:
    app = FastAPI(title="GoShip control service", version=__version__,
                  openapi_url=API_PREFIX + "/openapi.json", docs_url=API_PREFIX + "/docs", redoc_url=None)
    app.state.service = service
    app.state.metrics = metrics or Metrics(service.sessions)
    app.state.limiter = limiter or FailureLimiter()
    app.include_router(routes_projects.router, prefix=API_PREFIX)
    app.include_router(routes_admin.router, prefix=API_PREFIX)
    app.add_exception_handler(ControlError, control_error)
    app.add_exception_handler(RequestValidationError, request_invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
    app.add_middleware(RequestMetrics)
    app.openapi = functools.partial(openapi_with_documents, app)

    @app.get("/metrics", tags=["metrics"], summary="Prometheus metrics (admin token)")
    def metrics_endpoint(request: Request, caller: Annotated[Principal, Depends(principal)]):
        caller.require_admin("metrics")
        return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/healthz", tags=["metrics"], summary="Liveness: the store answers")
    def healthz(request: Request):
        request.app.state.service.ping()
        return {"status": "ok"}

    return app


class RequestMetrics:
    """API request counter and latency histogram, labelled by route template (bounded cardinality).

    A plain ASGI middleware: Starlette's ``BaseHTTPMiddleware`` costs a task and a memory stream
    per request, a third of a cheap read's time here.
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = ["500"]

        async def send_noting_status(message):
            if message["type"] == "http.response.start":
                status[0] = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            template = route_template(scope)
            metrics = scope["app"].state.metrics
            metrics.api_requests.labels(method=scope["method"], route=template, status=status[0]).inc()
            metrics.api_latency.labels(method=scope["method"], route=template).observe(time.perf_counter() - started)


def route_template(scope) -> str:
    """The matched route's path template; routes of an included router know only their own part."""
    route = scope.get("route")
    if route is None:
        return "unmatched"
    prefix = API_PREFIX if scope["path"].startswith(API_PREFIX + "/") and not route.path.startswith(API_PREFIX) else ""
    return prefix + route.path


async def control_error(request: Request, exc: ControlError):  # pylint: disable=unused-argument
    headers = {}
    if isinstance(exc, TooManyFailures):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def request_invalid(request: Request, exc: RequestValidationError):
    """FastAPI's own validation (query parameters, small JSON bodies) in GoShip's error shape; a
    body that is not JSON at all is a 400, as for the document routes."""
    for item in exc.errors():
        if item["type"] == "json_invalid":
            return await control_error(request, BadRequest("not valid JSON: %s" % item.get("ctx", {}).get("error", item["msg"])))
    problems = [{"path": field_path(item["loc"][1:] if item["loc"][:1] == ("body",) else item["loc"]),
                 "message": item["msg"]} for item in exc.errors()]
    return await control_error(request, Invalid(problems))


async def http_error(request: Request, exc: HTTPException):  # pylint: disable=unused-argument
    """Starlette's own errors (no such route, method not allowed) in GoShip's error shape."""
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    body = {"error": {"code": HTTP_ERROR_CODES.get(exc.status_code, "http_%d" % exc.status_code), "message": detail}}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def internal_error(request: Request, exc: Exception):  # pylint: disable=unused-argument
    """A bug: the documented shape, no detail for the client (the server logs the traceback)."""
    return JSONResponse(ControlError("internal error").body(), status_code=500)


def openapi_with_documents(app: FastAPI) -> dict:
    """The generated document plus the schemas of the YAML/JSON documents the apply routes take, and
    every error response described by the one error shape the handlers above produce."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in DOCUMENT_SCHEMAS.items():
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[name] = model_schema
    for name in FASTAPI_ERROR_SCHEMAS:
        components.pop(name, None)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = ERROR_CONTENT
            responses["4XX"] = {"description": "error", "content": ERROR_CONTENT}
    app.openapi_schema = schema
    return schema
