"""The container process from image config + app spec: Docker's command/args, env, workdir, user rules."""

import os

import pytest

from guest_init.oci import process

IMAGE = {"Entrypoint": ["/entry", "--flag"], "Cmd": ["serve", "--port", "80"],
         "Env": ["PATH=/image/bin", "LANG=C.UTF-8", "MODE=image"], "WorkingDir": "/srv", "User": "www"}


@pytest.mark.parametrize("command, args, expected", [
    (None, None, ["/entry", "--flag", "serve", "--port", "80"]),  # the image's defaults
    (None, ["debug"], ["/entry", "--flag", "debug"]),  # args replace Cmd only
    (["/bin/sh"], None, ["/bin/sh"]),  # command replaces Entrypoint and drops Cmd
    (["/bin/sh", "-c"], ["echo hi"], ["/bin/sh", "-c", "echo hi"]),
    ([], ["/bin/true"], ["/bin/true"]),  # an empty command clears the Entrypoint
])
def test_argv_rules(command, args, expected):
    assert process.resolve_argv(IMAGE, command, args) == expected


def test_argv_from_cmd_only_image():
    assert process.resolve_argv({"Cmd": ["/bin/sh"]}, None, ["-c", "x"]) == ["-c", "x"]
    assert process.resolve_argv({"Cmd": ["/bin/sh"]}, None, None) == ["/bin/sh"]


def test_nothing_to_run_is_an_error():
    with pytest.raises(process.ProcessError, match="nothing to run"):
        process.resolve_argv({}, None, None)
    with pytest.raises(process.ProcessError, match="Entrypoint"):
        process.resolve_argv({"Entrypoint": "/not/a/list"}, None, None)


def test_env_app_overrides_image_and_defaults_added():
    env = process.merge_env(IMAGE, {"MODE": "app", "PORT": "8080"}, "/home/www")
    assert env == ["PATH=/image/bin", "LANG=C.UTF-8", "MODE=app", "PORT=8080", "HOME=/home/www"]
    assert process.merge_env({}, {}, "/")[:1] == ["PATH=" + process.DEFAULT_PATH]


def test_workdir_rules():
    assert process.workdir(IMAGE, None) == "/srv"
    assert process.workdir(IMAGE, "/data") == "/data"
    assert process.workdir({}, None) == "/"
    with pytest.raises(process.ProcessError):
        process.workdir({}, "relative")


@pytest.fixture(name="rootfs")
def rootfs_fixture(tmp_path):
    etc = tmp_path / "rootfs" / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\n"
                                "broken line\nnobody:x:65534:65534::/nonexistent:/bin/false\n")
    (etc / "group").write_text("root:x:0:\nwww:x:33:\nlogs:x:4:www,other\nstaff:x:50:www\n")
    return tmp_path / "rootfs"


@pytest.mark.parametrize("spec, expected", [
    (None, (0, 0, (), "/root")),  # no app user and an image without User: root
    ("www", (33, 33, (4, 50), "/var/www")),
    ("33", (33, 33, (4, 50), "/var/www")),
    ("www:staff", (33, 50, (4,), "/var/www")),
    ("33:4", (33, 4, (50,), "/var/www")),
    ("1234", (1234, 0, (), "/")),  # unknown numeric uid: gid 0, home /
    ("1234:1234", (1234, 1234, (), "/")),
])
def test_user_resolution(rootfs, spec, expected):
    user = process.resolve_user(str(rootfs), {}, spec)
    assert (user.uid, user.gid, user.additional_gids, user.home) == expected


def test_user_falls_back_to_image_user(rootfs):
    assert process.resolve_user(str(rootfs), IMAGE, None).uid == 33
    assert process.resolve_user(str(rootfs), IMAGE, "0").uid == 0


@pytest.mark.parametrize("spec", ["ghost", "www:ghosts"])
def test_unknown_names_are_errors(rootfs, spec):
    with pytest.raises(process.ProcessError, match="not in the image"):
        process.resolve_user(str(rootfs), {}, spec)


def test_passwd_symlink_resolved_inside_rootfs(rootfs, tmp_path):
    """An image's /etc/passwd -> /etc/real-passwd means the image's file, not the host's."""
    (rootfs / "etc" / "real-passwd").write_text("svc:x:77:77::/svc:/bin/sh\n")
    os.replace(rootfs / "etc" / "passwd", tmp_path / "unused")
    (rootfs / "etc" / "passwd").symlink_to("/etc/real-passwd")
    assert process.resolve_user(str(rootfs), {}, "svc").uid == 77
    with pytest.raises(process.ProcessError):
        process.resolve_user(str(rootfs), {}, "root")  # the host has one, the image not
