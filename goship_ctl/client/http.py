"""The control service's REST API, with ControlService's method names (minus the principal)."""

from __future__ import annotations

import ssl
from urllib.parse import quote

import httpx

from goship_ctl.errors import ERRORS_BY_CODE, ControlError, Invalid, TooManyFailures, Unreachable

API = "/api/v1"
TIMEOUT_S = 30.0


class HttpBackend:
    def __init__(self, url: str, token: str | None, ca_cert: str | None = None, timeout_s: float = TIMEOUT_S):
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = "Bearer " + token
        # trust_env=False: no proxy or .netrc from the environment sees the token.
        try:
            verify = ssl.create_default_context(cafile=ca_cert) if ca_cert else True
        except (OSError, ssl.SSLError) as exc:
            raise ControlError("cannot use CA certificate %s: %s" % (ca_cert, exc)) from None
        self._client = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s,
                                    verify=verify, trust_env=False)
        self.url = url

    def close(self) -> None:
        self._client.close()

    def _call(self, method: str, path: str, **kwargs):
        try:
            response = self._client.request(method, API + path, **kwargs)
        except httpx.HTTPError as exc:
            raise Unreachable("%s %s%s: %s" % (method, self.url, API + path, exc)) from None
        if response.is_success:
            return response.json()
        raise _error(response)

    def apply_project(self, document):
        return self._call("POST", "/projects", json=document)

    def get_project(self, name):
        return self._call("GET", "/projects/%s" % _segment(name))

    def list_projects(self):
        return self._call("GET", "/projects")

    def scale_app(self, project, app, replicas, resource_version=None):
        body = {"replicas": replicas}
        if resource_version is not None:
            body["resourceVersion"] = resource_version
        return self._call("POST", "/projects/%s/apps/%s/scale" % (_segment(project), _segment(app)), json=body)

    def delete_project(self, name, resource_version=None):
        params = {"resourceVersion": resource_version} if resource_version is not None else {}
        return self._call("DELETE", "/projects/%s" % _segment(name), params=params)

    def list_apps(self, project=None):
        return self._call("GET", "/apps", params=_present(project=project))

    def list_vms(self, project=None):
        return self._call("GET", "/vms", params=_present(project=project))

    def apply_node(self, document):
        return self._call("POST", "/nodes", json=document)

    def list_nodes(self):
        return self._call("GET", "/nodes")

    def get_node(self, name):
        return self._call("GET", "/nodes/%s" % _segment(name))

    def set_node_schedulable(self, name, schedulable):
        return self._call("POST", "/nodes/%s/%s" % (_segment(name), "uncordon" if schedulable else "drain"))

    def delete_node(self, name):
        return self._call("DELETE", "/nodes/%s" % _segment(name))

    def record_node_facts(self, name, host):
        return self._call("PUT", "/nodes/%s/facts" % _segment(name), json=host)

    def create_token(self, name, project):
        return self._call("POST", "/tokens", json=_present(name=name, project=project))

    def list_tokens(self):
        return self._call("GET", "/tokens")

    def revoke_token(self, token_id):
        return self._call("DELETE", "/tokens/%s" % _segment(token_id))

    def events(self, project=None, node=None, after=0, limit=100):
        return self._call("GET", "/events", params=_present(project=project, node=node, after=after, limit=limit))

    def desired_state(self):
        return self._call("GET", "/desired-state")


def _segment(value) -> str:
    """A name as one URL path segment ("/" and ".." cannot reach another route)."""
    return quote(str(value), safe="")


def _present(**values) -> dict:
    return {key: value for key, value in values.items() if value is not None}


def _error(response: httpx.Response) -> ControlError:
    try:
        error = response.json()["error"]
        code, message = error["code"], error["message"]
    except (ValueError, KeyError, TypeError):
        return ControlError("HTTP %d: %s" % (response.status_code, response.text[:200]))
    if code == "invalid":
        return Invalid(error.get("problems") or [{"path": "<request>", "message": message}])
    if code == TooManyFailures.code:
        return TooManyFailures(message, int(response.headers.get("retry-after", "1")))
    return ERRORS_BY_CODE.get(code, ControlError)(message)
