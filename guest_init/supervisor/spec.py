"""Validation of the `apply` arguments into frozen app specs.

Every error names the field path (`apps[1].health.liveness.interval_s`); validation happens
before anything changes, so a bad apply changes nothing. Secret env values are kept in the
spec (the runtime needs them) but never appear in error messages or in `public()`.
"""

import hashlib
import json
import re
from dataclasses import dataclass

RUNTIMES = ("crun", "process")
RESTART_POLICIES = ("always", "on-failure", "never")
MAX_REPLICAS = 256
DEFAULT_STOP_GRACE_S = 10.0
DEFAULT_STARTUP_GRACE_S = 5.0
CHECK_DEFAULTS = {"interval_s": 5.0, "timeout_s": 1.0, "failure_threshold": 3}
RESERVED_ENV = ("GOSHIP_APP", "GOSHIP_REPLICA")

_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_USER = re.compile(r"[0-9]{1,10}(:[0-9]{1,10})?\Z")
# fields whose change needs new processes; the others are updated in place
_PROCESS_FIELDS = ("runtime", "image", "command", "args", "env", "workdir", "user", "health", "resources", "ports")


class SpecError(ValueError):
    """An invalid apply; str() names the field."""

    def __init__(self, path, message):
        super().__init__("%s: %s" % (path, message))
        self.path = path


@dataclass(frozen=True)
class Check:
    kind: str  # exec | tcp | http
    argv: tuple  # exec only
    port: int | None  # tcp/http: None = the replica's PORT
    path: str  # http only
    interval_s: float
    timeout_s: float
    failure_threshold: int


@dataclass(frozen=True)
class AppSpec:
    name: str
    runtime: str
    image: str
    command: tuple | None
    args: tuple | None
    env: tuple  # ((name, value, secret), ...) sorted by name
    workdir: str | None
    user: str | None
    replicas: int
    restart: str
    liveness: Check | None
    readiness: Check | None
    startup_grace_s: float
    cpu_millis: int | None
    memory_mib: int | None
    pids: int | None
    ports: tuple
    depends_on: tuple
    stop_grace_s: float
    document: str  # canonical JSON of the normalized spec, secrets included (persistence)
    spec_hash: str  # hash of the process-defining fields only

    def secrets(self):
        return [value for name, value, secret in self.env if secret and value]

    def port_of(self, index):
        return self.ports[0] + index if self.ports else None


@dataclass(frozen=True)
class DesiredState:
    generation: int
    apps: tuple  # AppSpec, in declaration order

    def document(self):
        """JSON of the whole apply, secrets included: for spec.json only."""
        apps = ",".join(app.document for app in self.apps)
        return '{"generation":%d,"apps":[%s]}' % (self.generation, apps)


def parse_apply(generation, apps):
    """Validate an apply; return a DesiredState or raise SpecError."""
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise SpecError("generation", "must be an integer >= 0")
    if not isinstance(apps, list):
        raise SpecError("apps", "must be an array")
    parsed = tuple(_parse_app("apps[%d]" % i, raw) for i, raw in enumerate(apps))
    names = [app.name for app in parsed]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise SpecError("apps[%d].name" % i, "duplicate app name %r" % name)
    for i, app in enumerate(parsed):
        for j, dependency in enumerate(app.depends_on):
            if dependency not in names:
                raise SpecError("apps[%d].depends_on[%d]" % (i, j), "no app named %r" % dependency)
    _check_acyclic(parsed)
    return DesiredState(generation, parsed)


def _check_acyclic(apps):
    by_name = {app.name: app for app in apps}
    done, active = set(), []

    def visit(name):
        if name in done:
            return
        if name in active:
            cycle = active[active.index(name):] + [name]
            index = [app.name for app in apps].index(name)
            raise SpecError("apps[%d].depends_on" % index, "dependency cycle %s" % " -> ".join(cycle))
        active.append(name)
        for dependency in by_name[name].depends_on:
            visit(dependency)
        active.pop()
        done.add(name)
    for app in apps:
        visit(app.name)


_APP_KEYS = ("name", "runtime", "image", "command", "args", "env", "workdir", "user", "replicas", "restart",
             "health", "resources", "ports", "depends_on", "stop_grace_s")


def _parse_app(path, raw):
    fields = _object(path, raw, _APP_KEYS)
    name = _string(path + ".name", fields.get("name"))
    if not _DNS_LABEL.match(name):
        raise SpecError(path + ".name", "must be a DNS label (a-z, 0-9, '-', at most 63 characters)")
    runtime = _choice(path + ".runtime", fields.get("runtime", "crun"), RUNTIMES)
    image = _string(path + ".image", fields.get("image"))
    if runtime == "process" and not image.startswith("/"):
        raise SpecError(path + ".image", "the process runtime needs an absolute directory (or '/')")
    command = _optional(fields, "command", lambda value: _argv(path + ".command", value))
    args = _optional(fields, "args", lambda value: _argv(path + ".args", value, allow_empty=True))
    if runtime == "process" and not command:
        raise SpecError(path + ".command", "the process runtime needs a command")
    ports = _ports(path + ".ports", fields.get("ports", []))
    env = _env(path + ".env", fields.get("env", {}), ports)
    workdir = _optional(fields, "workdir", lambda value: _absolute(path + ".workdir", value))
    user = _optional(fields, "user", lambda value: _user(path + ".user", value))
    replicas = _integer(path + ".replicas", fields.get("replicas", 1), 0, MAX_REPLICAS)
    if ports and ports[0] + max(replicas - 1, 0) > 65535:
        raise SpecError(path + ".replicas", "PORT of the last replica would pass 65535")
    restart = _choice(path + ".restart", fields.get("restart", "always"), RESTART_POLICIES)
    liveness, readiness, startup_grace_s = _health(path + ".health", fields.get("health") or {}, ports)
    cpu_millis, memory_mib, pids = _resources(path + ".resources", fields.get("resources") or {})
    depends_on = _names(path + ".depends_on", fields.get("depends_on", []))
    stop_grace_s = _number(path + ".stop_grace_s", fields.get("stop_grace_s", DEFAULT_STOP_GRACE_S), 0.0, 3600.0)
    normalized = {
        "name": name, "runtime": runtime, "image": image, "command": command, "args": args,
        "env": {key: {"value": value, "secret": secret} for key, value, secret in env},
        "workdir": workdir, "user": user, "replicas": replicas, "restart": restart,
        "health": {"liveness": _check_json(liveness), "readiness": _check_json(readiness),
                   "startup_grace_s": startup_grace_s},
        "resources": {"cpu_millis": cpu_millis, "memory_mib": memory_mib, "pids": pids},
        "ports": list(ports), "depends_on": list(depends_on), "stop_grace_s": stop_grace_s,
    }
    process_part = json.dumps([normalized[key] for key in _PROCESS_FIELDS], sort_keys=True, separators=(",", ":"))
    return AppSpec(
        name=name, runtime=runtime, image=image, command=command, args=args, env=env, workdir=workdir,
        user=user, replicas=replicas, restart=restart, liveness=liveness, readiness=readiness,
        startup_grace_s=startup_grace_s, cpu_millis=cpu_millis, memory_mib=memory_mib, pids=pids,
        ports=ports, depends_on=depends_on, stop_grace_s=stop_grace_s,
        document=json.dumps(normalized, sort_keys=True, separators=(",", ":")),
        spec_hash=hashlib.sha256(process_part.encode("utf-8")).hexdigest()[:12],
    )


def _optional(fields, key, parse):
    value = fields.get(key)
    return None if value is None else parse(value)


def _object(path, value, allowed):
    if not isinstance(value, dict):
        raise SpecError(path, "must be an object")
    for key in value:
        if key not in allowed:
            raise SpecError("%s.%s" % (path, key), "unknown field")
    return value


def _string(path, value):
    if not isinstance(value, str) or not value:
        raise SpecError(path, "must be a non-empty string")
    if "\x00" in value:
        raise SpecError(path, "must not contain NUL")
    return value


def _absolute(path, value):
    value = _string(path, value)
    if not value.startswith("/"):
        raise SpecError(path, "must be an absolute path")
    return value


def _user(path, value):
    if not isinstance(value, str) or not _USER.match(value):
        raise SpecError(path, "must be 'uid' or 'uid:gid' (numbers)")
    return value


def _choice(path, value, choices):
    if value not in choices:
        raise SpecError(path, "must be one of %s" % ", ".join(choices))
    return value


def _integer(path, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SpecError(path, "must be an integer from %d to %d" % (low, high))
    return value


def _number(path, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise SpecError(path, "must be a number from %g to %g" % (low, high))
    return float(value)


def _argv(path, value, allow_empty=False):
    if not isinstance(value, list) or not (value or allow_empty):
        raise SpecError(path, "must be a%s array of strings" % ("n" if allow_empty else " non-empty"))
    for i, item in enumerate(value):
        if not isinstance(item, str) or "\x00" in item:
            raise SpecError("%s[%d]" % (path, i), "must be a string without NUL")
    return tuple(value)


def _names(path, value):
    if not isinstance(value, list):
        raise SpecError(path, "must be an array of app names")
    for i, item in enumerate(value):
        if not isinstance(item, str) or not _DNS_LABEL.match(item):
            raise SpecError("%s[%d]" % (path, i), "must be an app name")
    return tuple(dict.fromkeys(value))


def _ports(path, value):
    if not isinstance(value, list):
        raise SpecError(path, "must be an array of port numbers")
    ports = tuple(_integer("%s[%d]" % (path, i), port, 1, 65535) for i, port in enumerate(value))
    if len(set(ports)) != len(ports):
        raise SpecError(path, "ports must be unique")
    return ports


def _env(path, value, ports):
    """Return ((name, value, secret), ...); a secret's value never reaches a message."""
    if not isinstance(value, dict):
        raise SpecError(path, "must be an object of NAME: value")
    env = []
    for name, item in value.items():
        where = "%s.%s" % (path, name)
        if not _ENV_NAME.match(name):
            raise SpecError(where, "is not a valid environment variable name")
        if name in RESERVED_ENV or (name == "PORT" and ports):
            raise SpecError(where, "is set by guest_init")
        if isinstance(item, dict):
            _object(where, item, ("value", "secret"))
            secret = item.get("secret", False)
            if not isinstance(secret, bool):
                raise SpecError(where + ".secret", "must be a boolean")
            item = item.get("value")
        else:
            secret = False
        if not isinstance(item, str) or "\x00" in item:
            raise SpecError(where + (".value" if secret else ""), "must be a string without NUL")
        env.append((name, item, secret))
    return tuple(sorted(env))


def _health(path, value, ports):
    _object(path, value, ("liveness", "readiness", "startup_grace_s"))
    liveness = _optional(value, "liveness", lambda raw: _check(path + ".liveness", raw, ports))
    readiness = _optional(value, "readiness", lambda raw: _check(path + ".readiness", raw, ports))
    grace = _number(path + ".startup_grace_s", value.get("startup_grace_s", DEFAULT_STARTUP_GRACE_S), 0.0, 3600.0)
    return liveness, readiness, grace


def _check(path, raw, ports):
    fields = _object(path, raw, ("exec", "tcp", "http", *CHECK_DEFAULTS))
    kinds = [kind for kind in ("exec", "tcp", "http") if kind in fields]
    if len(kinds) != 1:
        raise SpecError(path, "needs exactly one of exec, tcp, http")
    kind = kinds[0]
    argv, port, http_path = (), None, "/"
    if kind == "exec":
        argv = _argv(path + ".exec", fields["exec"])
    else:
        target = _object("%s.%s" % (path, kind), fields[kind], ("port", "path") if kind == "http" else ("port",))
        port = _optional(target, "port", lambda value: _integer("%s.%s.port" % (path, kind), value, 1, 65535))
        if port is None and not ports:
            raise SpecError("%s.%s.port" % (path, kind), "needed when the app declares no ports")
        if kind == "http":
            http_path = _string(path + ".http.path", target.get("path", "/"))
            if not http_path.startswith("/") or any(c in http_path for c in " \r\n"):
                raise SpecError(path + ".http.path", "must start with '/' and contain no spaces")
    return Check(
        kind=kind, argv=argv, port=port, path=http_path,
        interval_s=_number(path + ".interval_s", fields.get("interval_s", CHECK_DEFAULTS["interval_s"]), 0.05, 3600.0),
        timeout_s=_number(path + ".timeout_s", fields.get("timeout_s", CHECK_DEFAULTS["timeout_s"]), 0.05, 3600.0),
        failure_threshold=_integer(path + ".failure_threshold",
                                   fields.get("failure_threshold", CHECK_DEFAULTS["failure_threshold"]), 1, 1000),
    )


def _check_json(check):
    if check is None:
        return None
    target = {"exec": list(check.argv)} if check.kind == "exec" else {
        check.kind: {"port": check.port, **({"path": check.path} if check.kind == "http" else {})}}
    return {**target, "interval_s": check.interval_s, "timeout_s": check.timeout_s,
            "failure_threshold": check.failure_threshold}


def _resources(path, value):
    _object(path, value, ("cpu_millis", "memory_mib", "pids"))
    cpu = _optional(value, "cpu_millis", lambda raw: _integer(path + ".cpu_millis", raw, 1, 1024 * 1000))
    memory = _optional(value, "memory_mib", lambda raw: _integer(path + ".memory_mib", raw, 1, 1 << 30))
    pids = _optional(value, "pids", lambda raw: _integer(path + ".pids", raw, 1, 1 << 22))
    return cpu, memory, pids
