"""Package resolution and download through the host's configured apt sources."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from goship_ctl.image.closure import UnknownPackage, Unsatisfiable, parse_depends, select_closure
from goship_ctl.image.errors import BuildError
from goship_ctl.image.runner import CommandFailed, CommandRunner

DEPENDS_ARGS = (
    "apt-cache", "depends", "--recurse", "--no-recommends", "--no-suggests",
    "--no-conflicts", "--no-breaks", "--no-replaces", "--no-enhances",
)


@dataclass(frozen=True)
class PackageInfo:
    """One candidate package version as apt's index describes it."""

    name: str
    version: str
    architecture: str
    filename: str  # path in the archive pool; its basename names the cached .deb
    size: int
    sha256: str
    installed_size_kib: int

    @property
    def deb_name(self) -> str:
        return os.path.basename(self.filename)


def parse_show(text: str) -> dict[str, PackageInfo]:
    """Parses ``apt-cache show`` stanzas; the first stanza of a name wins."""
    infos: dict[str, PackageInfo] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line and not line[0].isspace():
                key, dummy, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" not in fields or fields["Package"] in infos:
            continue
        try:
            infos[fields["Package"]] = PackageInfo(
                name=fields["Package"], version=fields["Version"],
                architecture=fields["Architecture"], filename=fields["Filename"],
                size=int(fields["Size"]), sha256=fields["SHA256"],
                installed_size_kib=int(fields.get("Installed-Size", "0")),
            )
        except (KeyError, ValueError) as exc:
            raise BuildError(f"apt-cache show: malformed entry for {fields['Package']}: {exc}")
    return infos


def resolve(runner: CommandRunner, roots: list[str], unfollowed: frozenset[str]) -> list[PackageInfo]:
    """The closure of ``roots`` with the candidate version of every package."""
    try:
        depends = runner.run([*DEPENDS_ARGS, *roots]).stdout
    except CommandFailed as exc:
        raise BuildError(f"cannot resolve packages {' '.join(roots)}: {exc}")
    try:
        names = select_closure(parse_depends(depends), roots, unfollowed)
    except (UnknownPackage, Unsatisfiable) as exc:
        raise BuildError(str(exc))
    try:
        infos = parse_show(runner.run(["apt-cache", "show", "--no-all-versions", *names]).stdout)
    except CommandFailed as exc:
        raise BuildError(f"cannot read package metadata: {exc}")
    missing = [name for name in names if name not in infos]
    if missing:
        raise BuildError(f"no installable version of {', '.join(missing)} in the configured apt sources")
    return [infos[name] for name in names]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cached_deb(cache_dir: Path, package: PackageInfo) -> Path | None:
    """The cached .deb of ``package`` if present and intact (size and sha256 from the index)."""
    path = cache_dir / package.deb_name
    try:
        if path.stat().st_size == package.size and sha256_file(path) == package.sha256:
            return path
    except FileNotFoundError:
        return None
    return None


def missing_debs(cache_dir: Path, packages: list[PackageInfo]) -> list[PackageInfo]:
    return [package for package in packages if cached_deb(cache_dir, package) is None]


def download(runner: CommandRunner, cache_dir: Path, packages: list[PackageInfo]) -> None:
    """Downloads ``packages`` (exact versions) with ``apt-get download`` into ``cache_dir``.

    Files land in a private directory first and move into the cache only once their
    checksum matches the index, so the cache never holds a partial or wrong .deb.
    """
    if not packages:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".download-", dir=cache_dir))
    try:
        argv = ["apt-get", "download", "-q", *(f"{p.name}={p.version}" for p in packages)]
        try:
            runner.run(argv, cwd=work)
        except CommandFailed as exc:
            raise BuildError(f"apt-get download failed: {exc}")
        for package in packages:
            fetched = _find_fetched(work, package)
            if fetched is None:
                raise BuildError(f"apt-get download did not produce {package.deb_name}")
            if sha256_file(fetched) != package.sha256:
                raise BuildError(f"{fetched.name}: sha256 does not match the apt index")
            os.replace(fetched, cache_dir / package.deb_name)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _find_fetched(work: Path, package: PackageInfo) -> Path | None:
    """apt-get names downloads ``name_version_arch.deb`` with ``:`` escaped as ``%3a``."""
    version = package.version.replace(":", "%3a")
    for name in (f"{package.name}_{version}_{package.architecture}.deb", package.deb_name):
        if (work / name).is_file():
            return work / name
    return None
