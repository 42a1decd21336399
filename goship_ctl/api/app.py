"""``create_app``: the FastAPI application around a ControlService."""

from __future__ import annotations

import functools
import time
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from goship_ctl import __version__
from goship_ctl.api import routes_admin, routes_projects
from goship_ctl.api.auth import principal
from goship_ctl.auth.principal import Principal
from goship_ctl.auth.ratelimit import FailureLimiter
from goship_ctl.errors import ControlError, Invalid, TooManyFailures, Unauthorized
from goship_ctl.metrics import CONTENT_TYPE, Metrics
from goship_ctl.service.control import ControlService
from goship_ctl.spec.node import NodeSpec
from goship_ctl.spec.problems import field_path
from goship_ctl.spec.project import ProjectDocument

API_PREFIX = "/api/v1"
DOCUMENT_SCHEMAS = {"ProjectDocument": ProjectDocument, "NodeSpec": NodeSpec}


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
    app.middleware("http")(count_request)
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


async def count_request(request: Request, call_next):
    """API request counter and latency histogram, labelled by route template (bounded cardinality)."""
    started = time.perf_counter()
    response = await call_next(request)
    template = route_template(request)
    metrics = request.app.state.metrics
    metrics.api_requests.labels(method=request.method, route=template, status=str(response.status_code)).inc()
    metrics.api_latency.labels(method=request.method, route=template).observe(time.perf_counter() - started)
    return response


def route_template(request: Request) -> str:
    """The matched route's path template; routes of an included router know only their own part."""
    route = request.scope.get("route")
    if route is None:
        return "unmatched"
    prefix = API_PREFIX if request.url.path.startswith(API_PREFIX + "/") and not route.path.startswith(API_PREFIX) else ""
    return prefix + route.path


async def control_error(request: Request, exc: ControlError):  # pylint: disable=unused-argument
    headers = {}
    if isinstance(exc, TooManyFailures):
        headers["Retry-After"] = str(exc.retry_after_s)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


async def request_invalid(request: Request, exc: RequestValidationError):  # pylint: disable=unused-argument
    """FastAPI's own validation (query parameters, small JSON bodies) in GoShip's error shape."""
    problems = [{"path": field_path(item["loc"][1:] if item["loc"][:1] == ("body",) else item["loc"]),
                 "message": item["msg"]} for item in exc.errors()]
    return await control_error(request, Invalid(problems))


def openapi_with_documents(app: FastAPI) -> dict:
    """The generated document plus the schemas of the YAML/JSON documents the apply routes take."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, model in DOCUMENT_SCHEMAS.items():
        model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(model_schema.pop("$defs", {}))
        components[name] = model_schema
    app.openapi_schema = schema
    return schema
