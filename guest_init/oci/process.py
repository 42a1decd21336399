"""The container's process from the image config and the app spec, with Docker's rules.

- argv: an app `command` replaces the image's Entrypoint and drops its Cmd; app `args`
  replace Cmd (Kubernetes' command/args mean the same).
- env: the image's Env, then the app's (which wins per name); PATH and HOME are added
  when neither sets them.
- workdir: the app's, else the image's WorkingDir, else `/` (crun creates a missing one).
- user: the app's, else the image's User, else root; `name|uid[:group|gid]`, names
  looked up in the image's /etc/passwd and /etc/group, supplementary groups from
  /etc/group. A name that is not there is an error; an unknown numeric uid gets gid 0.
"""

from dataclasses import dataclass

from guest_init.oci import rootpath

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ProcessError(ValueError):
    """The app and image together do not describe a process that can run."""


@dataclass(frozen=True)
class User:
    uid: int
    gid: int
    additional_gids: tuple
    home: str


def resolve_argv(config, command, args):
    """argv from the image config's Entrypoint/Cmd and the app's command/args (None = unset)."""
    entrypoint = _string_list(config.get("Entrypoint"), "image Entrypoint")
    cmd = _string_list(config.get("Cmd"), "image Cmd")
    if command is not None:
        entrypoint, cmd = list(command), []
    if args is not None:
        cmd = list(args)
    argv = entrypoint + cmd
    if not argv:
        raise ProcessError("nothing to run: no command or args in the app and no Entrypoint or Cmd in the image")
    return argv


def merge_env(config, app_env, home):
    """KEY=VALUE list: the image's Env overridden by app_env; PATH and HOME defaulted."""
    merged = {}
    for item in _string_list(config.get("Env"), "image Env"):
        key, sep, value = item.partition("=")
        if key and sep:
            merged[key] = value
    merged.update(app_env)
    merged.setdefault("PATH", DEFAULT_PATH)
    merged.setdefault("HOME", home)
    return ["%s=%s" % item for item in merged.items()]


def workdir(config, app_workdir):
    chosen = app_workdir or config.get("WorkingDir") or "/"
    if not isinstance(chosen, str) or not chosen.startswith("/"):
        raise ProcessError("working directory %r is not an absolute path" % (chosen,))
    return chosen


def resolve_user(rootfs, config, app_user):
    """User for `app_user`, else the image config's User, looked up in the rootfs."""
    spec = app_user or config.get("User") or ""
    if not isinstance(spec, str):
        raise ProcessError("image User is not a string")
    name, _sep, group = spec.partition(":")
    passwd = _table(rootfs, "/etc/passwd", 7)
    groups = _table(rootfs, "/etc/group", 4)
    entry = _lookup(passwd, name or "0")
    if entry is None and not (name or "0").isdigit():
        raise ProcessError("user %r is not in the image's /etc/passwd" % name)
    uid = int(entry[2]) if entry else int(name or "0")
    gid = int(entry[3]) if entry else 0
    if group:
        group_entry = _lookup(groups, group)
        if group_entry is None and not group.isdigit():
            raise ProcessError("group %r is not in the image's /etc/group" % group)
        gid = int(group_entry[2]) if group_entry else int(group)
    user_name = entry[0] if entry else None
    additional = tuple(sorted({int(row[2]) for row in groups
                               if user_name and user_name in row[3].split(",") and int(row[2]) != gid}))
    home = entry[5] if entry and entry[5].startswith("/") else "/"
    return User(uid, gid, additional, home)


def _lookup(rows, key):
    """Row whose name (field 0) is key, else whose id (field 2) is key."""
    for row in rows:
        if row[0] == key:
            return row
    if key.isdigit():
        for row in rows:
            if row[2] == key:
                return row
    return None


def _table(rootfs, path, fields):
    """Well-formed lines of a passwd-style file in the rootfs (numeric id in field 2 and 3)."""
    text = rootpath.read_text(rootfs, path) or ""
    rows = []
    for line in text.splitlines():
        row = line.split(":")
        if len(row) == fields and row[2].isdigit() and (fields != 7 or row[3].isdigit()):
            rows.append(row)
    return rows


def _string_list(value, what):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProcessError("%s is not a list of strings" % what)
    return list(value)
