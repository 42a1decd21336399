"""A tiny image from Debian's busybox-static: a shell, core utilities and `httpd`.

The default process serves /www with busybox httpd on $PORT (8080 when unset), which is
what GoShip's tests use as a readiness/liveness target. No registry needed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from goship_ctl.oci.build import ProcessConfig, write_layout
from goship_ctl.oci.layer import layer_from_tree

BUSYBOX = Path("/bin/busybox")
APPLETS = ("sh", "cat", "echo", "env", "id", "kill", "ls", "mkdir", "nc", "ps", "rm", "sleep",
           "test", "touch", "true", "false", "wget", "httpd", "head", "dd")
DEFAULT_PORT = 8080
SERVE = (f'echo "serving on port ${{PORT:-{DEFAULT_PORT}}}"; '
         f'exec httpd -f -v -p "${{PORT:-{DEFAULT_PORT}}}" -h /www')
PROCESS = ProcessConfig(
    entrypoint=("/bin/sh", "-c"),
    cmd=(SERVE,),
    env=("PATH=/bin",),
    workdir="/www",
    exposed_ports=(DEFAULT_PORT,),
)


def busybox_tree(root: Path, busybox: Path = BUSYBOX) -> None:
    """Fill root with /bin/busybox + applet links, /etc/passwd and group, /tmp, /www."""
    root = Path(root)
    for directory, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("www", 0o755)):
        (root / directory).mkdir(parents=True, exist_ok=True)
        os.chmod(root / directory, mode)
    shutil.copyfile(busybox, root / "bin" / "busybox")
    os.chmod(root / "bin" / "busybox", 0o755)
    for applet in APPLETS:
        (root / "bin" / applet).symlink_to("busybox")
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/www:/bin/sh\n"
                                         "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    (root / "etc" / "group").write_text("root:x:0:\napp:x:1000:\nnogroup:x:65534:\n")
    (root / "www" / "index.html").write_text("goship busybox demo\n")
    (root / "www" / "healthz").write_text("ok\n")


def build_busybox_image(output: Path, busybox: Path = BUSYBOX, process: ProcessConfig = PROCESS) -> str:
    """Write the busybox image layout at output; return its manifest digest."""
    with tempfile.TemporaryDirectory(prefix="goship-busybox-") as tree:
        busybox_tree(Path(tree), busybox)
        os.chmod(tree, 0o755)
        layer = layer_from_tree(Path(tree))
    return write_layout(Path(output), [layer], process)
