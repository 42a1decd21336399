"""Looking files up across extracted packages the way the installed system would."""

import os

from goship_ctl.image.staging import Staging, merged_path


def test_merged_path():
    assert merged_path("/lib64/ld-linux-x86-64.so.2") == "usr/lib64/ld-linux-x86-64.so.2"
    assert merged_path("bin/kmod") == "usr/bin/kmod"
    assert merged_path("usr/lib/../lib/x") == "usr/lib/x"
    assert merged_path("etc/passwd") == "etc/passwd"


def test_locate_follows_symlinks_across_packages_and_merged_dirs(tmp_path):
    staging = Staging(tmp_path)
    libc = tmp_path / "libc6" / "lib" / "x86_64-linux-gnu"
    libc.mkdir(parents=True)
    (libc / "ld-linux-x86-64.so.2").write_bytes(b"loader")
    (tmp_path / "libc6" / "lib64").mkdir()
    os.symlink("/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
               tmp_path / "libc6" / "lib64" / "ld-linux-x86-64.so.2")
    other = tmp_path / "libfoo" / "usr" / "lib" / "x86_64-linux-gnu"
    other.mkdir(parents=True)
    (other / "libfoo.so.1.2.3").write_bytes(b"foo")
    os.symlink("libfoo.so.1.2.3", other / "libfoo.so.1")
    os.symlink("/etc/missing", other / "dangling.py")

    assert staging.locate("/lib64/ld-linux-x86-64.so.2").read_bytes() == b"loader"
    assert staging.locate("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2").read_bytes() == b"loader"
    assert staging.locate("lib/x86_64-linux-gnu/libfoo.so.1").read_bytes() == b"foo"
    assert staging.locate("usr/lib/x86_64-linux-gnu/libfoo.so.1", ["libc6"]) is None
    assert staging.locate("usr/lib/x86_64-linux-gnu/dangling.py") is None
    assert staging.locate("usr/bin/nothing") is None
