"""Build failures: one-line errors, previous image intact, no scratch left behind.

The apt commands are faked through an injected runner; nothing here needs the network.
"""

import hashlib

import pytest

from goship_ctl.image import manifest
from goship_ctl.image.build import Progress, build_image, check_free_space
from goship_ctl.image.errors import BuildError
from goship_ctl.image.runner import CommandFailed, CommandResult
from goship_ctl.image.spec import ImageSpec

SPEC = ImageSpec(kernel_package="linux-image-amd64", packages=("busybox-static",))
DEPENDS = """\
linux-image-amd64
  Depends: linux-image-6.1.0-99-amd64
busybox-static
linux-image-6.1.0-99-amd64
  Depends: kmod
  Depends: linux-base
kmod
linux-base
"""


def stanza(name, version, installed_kib=100):
    data = name.encode()
    return (f"Package: {name}\nVersion: {version}\nArchitecture: amd64\n"
            f"Installed-Size: {installed_kib}\nFilename: pool/main/x/{name}_{version}_amd64.deb\n"
            f"Size: {len(data)}\nSHA256: {hashlib.sha256(data).hexdigest()}\n")


class FakeApt:
    """Answers apt-cache from canned text; apt-get download fails like an offline host."""

    def __init__(self, depends=DEPENDS, installed_kib=100, download_error=None):
        self.depends, self.installed_kib = depends, installed_kib
        self.download_error = download_error or (
            "E: Failed to fetch http://deb.example/pool/kmod.deb  Temporary failure resolving\n")
        self.calls = []

    def available(self, program):
        return True

    def run(self, argv, *, cwd=None):
        self.calls.append(argv)
        if argv[:2] == ["apt-cache", "depends"]:
            return CommandResult(self.depends, "")
        if argv[:2] == ["apt-cache", "show"]:
            names = argv[3:]
            return CommandResult("\n".join(stanza(n, "1.0", self.installed_kib) for n in names), "")
        if argv[:2] == ["apt-get", "download"]:
            raise CommandFailed(argv, 100, self.download_error)
        raise AssertionError(f"unexpected command {argv}")


@pytest.fixture
def guest_init(tmp_path):
    package = tmp_path / "src" / "guest_init"
    package.mkdir(parents=True)
    (package / "__main__.py").write_text("")
    return package


@pytest.fixture
def previous_image(tmp_path):
    image = tmp_path / "images" / "default"
    image.mkdir(parents=True)
    for name in manifest.IMAGE_FILES:
        (image / name).write_bytes(b"old " + name.encode())
    manifest.write_manifest(image, {"format": manifest.FORMAT, "input_hash": "old",
                                    "files": manifest.describe_files(image)})
    return image


def snapshot(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def build(output, guest_init, runner, spec=SPEC, progress_lines=None):
    lines = progress_lines if progress_lines is not None else []
    build_image(output, spec=spec, guest_init=guest_init, runner=runner,
                progress=Progress(lines.append), apt_state="s")


def assert_untouched(image, before):
    assert snapshot(image) == before
    leftovers = [p.name for p in image.parent.iterdir() if p.name.startswith(".default.build-")]
    assert leftovers == []


def test_download_failure_keeps_previous_image(previous_image, guest_init):
    before = snapshot(previous_image)
    lines = []
    with pytest.raises(BuildError) as info:
        build(previous_image, guest_init, FakeApt(), progress_lines=lines)
    message = str(info.value)
    assert message.startswith("apt-get download failed:") and "E: Failed to fetch" in message
    assert "\n" not in message
    assert_untouched(previous_image, before)
    assert lines[0].startswith("[1/8]") and "resolving packages" in lines[0]
    assert not list((previous_image.parent / "cache" / "debs").iterdir())


def test_unknown_package_is_named(previous_image, guest_init):
    before = snapshot(previous_image)
    spec = ImageSpec(kernel_package="linux-image-amd64",
                     packages=("busybox-static",), extra_packages=("no-such-package",))
    with pytest.raises(BuildError, match="'no-such-package' is not found in the configured apt sources"):
        build(previous_image, guest_init, FakeApt(), spec)
    assert_untouched(previous_image, before)


def test_missing_kernel_package(previous_image, guest_init):
    depends = "linux-image-cloud\n  Depends: kmod\nbusybox-static\nkmod\n"
    spec = ImageSpec(kernel_package="linux-image-cloud", packages=("busybox-static",))
    runner = FakeApt(depends=depends)
    with pytest.raises(BuildError, match="no kernel package found: linux-image-cloud"):
        build(previous_image, guest_init, runner, spec)
    assert not any(argv[:2] == ["apt-get", "download"] for argv in runner.calls)


def test_not_enough_space_is_checked_before_downloading(previous_image, guest_init):
    before = snapshot(previous_image)
    runner = FakeApt(installed_kib=1 << 40)  # a petabyte to unpack
    with pytest.raises(BuildError, match="not enough free space on .*MiB free"):
        build(previous_image, guest_init, runner)
    assert not any(argv[:2] == ["apt-get", "download"] for argv in runner.calls)
    assert_untouched(previous_image, before)


def test_missing_host_tool_is_named(previous_image, guest_init):
    class NoSquashfs(FakeApt):
        def available(self, program):
            return program != "mksquashfs"
    expected = r"required host tools not found: mksquashfs \(Debian package squashfs-tools\)"
    with pytest.raises(BuildError, match=expected):
        build(previous_image, guest_init, NoSquashfs())


def test_refuses_to_replace_a_directory_that_is_not_an_image(tmp_path, guest_init):
    precious = tmp_path / "home"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    with pytest.raises(BuildError, match="refusing to replace"):
        build(precious, guest_init, FakeApt())
    assert (precious / "notes.txt").read_text() == "keep me"


def test_missing_guest_init_is_reported(tmp_path):
    with pytest.raises(BuildError, match="guest_init package not found"):
        build(tmp_path / "image", tmp_path / "nowhere", FakeApt())


def test_free_space_is_summed_per_file_system(tmp_path):
    check_free_space({tmp_path / "a": 1, tmp_path / "b" / "c": 1})
    with pytest.raises(BuildError, match=f"not enough free space on {tmp_path}"):
        check_free_space({tmp_path / "a": 1 << 62, tmp_path / "b": 1 << 62})
