"""Small JSON request bodies of the API (the big documents are in goship_ctl.spec), and the
error body every error response has."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from goship_ctl.spec.project import MAX_REPLICAS, DnsLabel


class ScaleRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replicas: StrictInt = Field(ge=0, le=MAX_REPLICAS)
    resourceVersion: StrictInt | None = Field(default=None, ge=1)


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: DnsLabel
    project: DnsLabel | None = Field(default=None, description="scope the token to this project; omit for admin")


class FactsRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    capacity: dict | None = None
    confidential: dict | None = None


class Problem(BaseModel):
    path: str
    message: str


class ErrorDetail(BaseModel):
    code: str = Field(description="bad_request, unauthorized, forbidden, not_found, method_not_allowed, conflict, "
                                  "invalid, rate_limited, internal, ...")
    message: str
    problems: list[Problem] | None = Field(default=None, description="with code invalid: each field's problem")


class ErrorBody(BaseModel):
    """``{"error": {"code", "message", "problems"?}}``: the shape of every error the API returns."""

    error: ErrorDetail
