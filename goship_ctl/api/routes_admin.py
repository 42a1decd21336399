"""Admin-only routes: /api/v1/nodes, /api/v1/tokens, /api/v1/desired-state; and /api/v1/events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from goship_ctl.api.auth import principal
from goship_ctl.api.body import document, document_body
from goship_ctl.api.models import FactsRequest, TokenRequest
from goship_ctl.auth.principal import Principal

MAX_EVENT_ID = 2 ** 63 - 1  # the store's integer range: a larger `after` is a 422, not an overflow in the driver

router = APIRouter()
Caller = Annotated[Principal, Depends(principal)]


@router.post("/nodes", tags=["nodes"], summary="Add or update a node", openapi_extra=document_body("NodeSpec"),
             responses={201: {"description": "created"}})
def apply_node(request: Request, response: Response, caller: Caller, body: Annotated[Any, Depends(document)]):
    outcome = request.app.state.service.apply_node(caller, body)
    if outcome["result"] == "created":
        response.status_code = 201
    return outcome


@router.get("/nodes", tags=["nodes"], summary="List nodes")
def list_nodes(request: Request, caller: Caller):
    return request.app.state.service.list_nodes(caller)


@router.get("/nodes/{name}", tags=["nodes"], summary="One node")
def get_node(request: Request, caller: Caller, name: str):
    return request.app.state.service.get_node(caller, name)


@router.delete("/nodes/{name}", tags=["nodes"], summary="Remove a node that runs no VMs")
def delete_node(request: Request, caller: Caller, name: str):
    return request.app.state.service.delete_node(caller, name)


@router.post("/nodes/{name}/drain", tags=["nodes"], summary="Move every VM off the node; place nothing new there")
def drain_node(request: Request, caller: Caller, name: str):
    return request.app.state.service.set_node_schedulable(caller, name, False)


@router.post("/nodes/{name}/uncordon", tags=["nodes"], summary="Let the scheduler use the node again")
def uncordon_node(request: Request, caller: Caller, name: str):
    return request.app.state.service.set_node_schedulable(caller, name, True)


@router.put("/nodes/{name}/facts", tags=["nodes"], summary="Record the node's host_info facts")
def node_facts(request: Request, caller: Caller, name: str, body: FactsRequest):
    return request.app.state.service.record_node_facts(caller, name, body.model_dump(mode="json", exclude_none=True))


@router.get("/tokens", tags=["tokens"], summary="List tokens (never their secrets)")
def list_tokens(request: Request, caller: Caller):
    return request.app.state.service.list_tokens(caller)


@router.post("/tokens", tags=["tokens"], status_code=201, summary="Create a token; the answer shows it once")
def create_token(request: Request, caller: Caller, body: TokenRequest):
    return request.app.state.service.create_token(caller, body.name, body.project)


@router.delete("/tokens/{token_id}", tags=["tokens"], summary="Revoke a token")
def revoke_token(request: Request, caller: Caller, token_id: str):
    return request.app.state.service.revoke_token(caller, token_id)


@router.get("/desired-state", tags=["state"], summary="The DesiredState document the inventory plugin reads")
def desired_state(request: Request, caller: Caller):
    return request.app.state.service.desired_state(caller)


@router.get("/events", tags=["state"], summary="Event history, oldest first, after an event id")
def list_events(request: Request, caller: Caller, project: str | None = None, node: str | None = None,
                after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID)] = 0, limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    return request.app.state.service.events(caller, project, node, after, limit)
