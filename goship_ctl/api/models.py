"""Small JSON request bodies of the API (the big documents are in goship_ctl.spec)."""

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
