"""config.json of a replica bundle: namespaces, limits, user, env, mounts; and the crun runtime's use of it."""

import json
import os
import stat

import pytest

from guest_init.oci import bundle
from guest_init.oci.process import User
from guest_init.runtimes import get_runtime
from guest_init.runtimes.base import Launch, Limits
from oci_helpers import layout_from_tars, tar_bytes

USER = User(uid=1000, gid=1000, additional_gids=(4,), home="/www")


def make_config(limits=Limits(cpu_millis=250, memory_bytes=64 << 20, pids=32), cgroups_path="/goship/web/0"):
    return bundle.runtime_config(argv=["/bin/sh", "-c", "serve"], env=["PATH=/bin", "PORT=8080"], cwd="/www",
                                 user=USER, hostname="vm1", cgroups_path=cgroups_path, limits=limits)


def test_namespaces_share_the_vm_network():
    kinds = [ns["type"] for ns in make_config()["linux"]["namespaces"]]
    assert sorted(kinds) == ["cgroup", "ipc", "mount", "pid", "uts"]
    assert all("path" not in ns for ns in make_config()["linux"]["namespaces"])


def test_limits_become_cgroup_v2_resources():
    config = make_config()
    assert config["linux"]["cgroupsPath"] == "/goship/web/0"
    assert config["linux"]["resources"] == {
        "memory": {"limit": 64 << 20, "swap": 64 << 20}, "pids": {"limit": 32}, "cpu": {"quota": 25000, "period": 100000}}
    assert make_config(Limits(None, None, None))["linux"]["resources"] == {}
    assert make_config(Limits(2000, None, None))["linux"]["resources"]["cpu"] == {"quota": 200000, "period": 100000}


def test_no_cgroups_means_no_path_and_no_resources():
    linux = make_config(cgroups_path=None)["linux"]
    assert "cgroupsPath" not in linux and "resources" not in linux


def test_process_user_env_cwd():
    proc = make_config()["process"]
    assert proc["args"] == ["/bin/sh", "-c", "serve"]
    assert proc["env"] == ["PATH=/bin", "PORT=8080"]
    assert proc["cwd"] == "/www"
    assert proc["user"] == {"uid": 1000, "gid": 1000, "additionalGids": [4]}
    assert proc["terminal"] is False and proc["noNewPrivileges"] is True
    assert "CAP_MKNOD" not in proc["capabilities"]["bounding"]
    assert "CAP_SYS_ADMIN" not in proc["capabilities"]["effective"]


def test_mounts():
    mounts = {m["destination"]: m for m in make_config()["mounts"]}
    assert sorted(mounts) == ["/dev", "/dev/mqueue", "/dev/pts", "/dev/shm", "/proc", "/sys", "/sys/fs/cgroup"]
    assert mounts["/dev"]["type"] == "tmpfs" and mounts["/dev/pts"]["type"] == "devpts"
    assert "ro" in mounts["/sys"]["options"] and "ro" in mounts["/sys/fs/cgroup"]["options"]
    assert make_config()["root"] == {"path": "rootfs", "readonly": False}


def test_written_config_is_private(tmp_path):
    bundle.write_config(str(tmp_path), make_config())
    path = tmp_path / "config.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.loads(path.read_text())["hostname"] == "vm1"


@pytest.fixture(name="runtime")
def runtime_fixture(tmp_path):
    passwd = ("etc/passwd", "file", "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    layout_from_tars(tmp_path / "images" / "demo", [tar_bytes([("etc/", "dir", None), passwd])])
    return get_runtime("crun", cgroup_root="/sys/fs/cgroup", state_dir=str(tmp_path / "state"),
                       images_dir=str(tmp_path / "images"))


def launch(**overrides):
    fields = dict(app="web", index=1, container_id="web-1-abc", image="demo", argv=(), env={"SECRET": "s"},
                  workdir=None, user="app", limits=Limits(None, 128 << 20, None), cgroup="goship/web/1",
                  stdout_fd=1, stderr_fd=2)
    fields.update(overrides)
    return Launch(**fields)


def test_crun_runtime_config_from_image_and_launch(runtime):
    layout, image = runtime._image("demo")  # pylint: disable=protected-access
    lower = runtime.store.ensure(layout, image)
    argv = runtime.resolve_argv("demo", None, None)
    assert argv == ("/bin/true",)  # the image's Cmd
    config = runtime._config(launch(argv=argv), image, lower)  # pylint: disable=protected-access
    assert config["process"]["args"] == ["/bin/true"]
    assert config["process"]["user"]["uid"] == 1000
    assert "SECRET=s" in config["process"]["env"] and "HOME=/home/app" in config["process"]["env"]
    assert config["linux"]["cgroupsPath"] == "/goship/web/1"
    assert config["linux"]["resources"] == {"memory": {"limit": 128 << 20, "swap": 128 << 20}}
    assert runtime.cgroup_dir(launch()) == "/sys/fs/cgroup/goship/web/1"
    assert runtime.resolve_argv("demo", None, ["x"]) == ("x",)


def test_crun_exec_argv_uses_replica_user_and_cwd(runtime, tmp_path):
    bundle_dir = tmp_path / "state" / "bundles" / "web-1-abc"
    bundle_dir.mkdir(parents=True)
    bundle.write_config(str(bundle_dir), make_config())
    argv = runtime.exec_argv(launch(), ["wget", "-q", "http://127.0.0.1/"])
    assert argv[argv.index("exec"):] == ["exec", "--user", "1000:1000", "--cwd", "/www", "web-1-abc",
                                         "wget", "-q", "http://127.0.0.1/"]
    assert argv[1:3] == ["--root", str(tmp_path / "state" / "crun")]


@pytest.mark.parametrize("name", ["../etc", "a/b", ".hidden", ""])
def test_crun_refuses_image_names_that_are_paths(runtime, name):
    with pytest.raises(OSError, match="not an image layout name"):
        runtime.resolve_argv(name, None, None)
