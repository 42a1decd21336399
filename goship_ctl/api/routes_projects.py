"""/api/v1/projects, /api/v1/apps, /api/v1/vms."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from goship_ctl.api.auth import principal
from goship_ctl.api.body import document, document_body
from goship_ctl.api.models import ScaleRequest
from goship_ctl.auth.principal import Principal

router = APIRouter(tags=["projects"])
Caller = Annotated[Principal, Depends(principal)]


@router.post("/projects", summary="Apply a Project document (create or update)",
             openapi_extra=document_body("ProjectDocument"),
             responses={201: {"description": "created"}, 409: {"description": "stale resourceVersion"},
                        422: {"description": "invalid document; nothing stored"}})
def apply_project(request: Request, response: Response, caller: Caller, body: Annotated[Any, Depends(document)]):
    outcome = request.app.state.service.apply_project(caller, body)
    if outcome["result"] == "created":
        response.status_code = 201
    return outcome


@router.get("/projects", summary="List projects (a project token sees its own only)")
def list_projects(request: Request, caller: Caller):
    return request.app.state.service.list_projects(caller)


@router.get("/projects/{name}", summary="A project: spec (secrets redacted) and status")
def get_project(request: Request, caller: Caller, name: str):
    return request.app.state.service.get_project(caller, name)


@router.delete("/projects/{name}", summary="Delete a project (its VMs go at the next reconcile)")
def delete_project(request: Request, caller: Caller, name: str,
                   resource_version: Annotated[int | None, Query(alias="resourceVersion", ge=1)] = None):
    return request.app.state.service.delete_project(caller, name, resource_version)


@router.get("/projects/{name}/apps", summary="The project's apps with replica states")
def project_apps(request: Request, caller: Caller, name: str):
    return request.app.state.service.list_apps(caller, name)


@router.get("/projects/{name}/vms", summary="The project's VMs, desired and reported")
def project_vms(request: Request, caller: Caller, name: str):
    return request.app.state.service.list_vms(caller, name)


@router.post("/projects/{name}/apps/{app}/scale", summary="Set an app's replicas (per VM)")
def scale_app(request: Request, caller: Caller, name: str, app: str, body: ScaleRequest):
    return request.app.state.service.scale_app(caller, name, app, body.replicas, body.resourceVersion)


@router.get("/apps", summary="Apps of every visible project")
def list_apps(request: Request, caller: Caller, project: str | None = None):
    return request.app.state.service.list_apps(caller, project)


@router.get("/vms", summary="Project VMs of every visible project")
def list_vms(request: Request, caller: Caller, project: str | None = None):
    return request.app.state.service.list_vms(caller, project)
