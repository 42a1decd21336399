"""Kernel module selection from the kernel package's ``modules.dep`` and friends.

The builder runs ``depmod`` over the whole extracted module tree once (under a second),
reads the dependency, soft-dependency and alias tables it writes, ships only the closure
of the modules the guest needs, and runs ``depmod`` again over that subset so the guest's
``modprobe`` sees tables that match what is shipped.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from goship_ctl.image.errors import BuildError
from goship_ctl.image.runner import CommandFailed, CommandRunner

# Tables copied next to the shipped modules; depmod regenerates the rest.
KEPT_TABLES = ("modules.builtin", "modules.builtin.modinfo", "modules.order")


def module_name(relpath: str) -> str:
    """``kernel/arch/x86/crypto/crc32c-intel.ko`` -> ``crc32c_intel``."""
    base = relpath.rsplit("/", 1)[-1]
    for suffix in (".ko", ".ko.xz", ".ko.zst", ".ko.gz"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
            break
    return base.replace("-", "_")


@dataclass
class ModuleTables:
    paths: dict[str, str] = field(default_factory=dict)  # name -> path under lib/modules/<kver>
    depends: dict[str, list[str]] = field(default_factory=dict)  # name -> all dependency names
    softdeps: dict[str, list[str]] = field(default_factory=dict)  # name -> names or aliases
    aliases: dict[str, list[str]] = field(default_factory=dict)  # alias -> module names
    builtin: set[str] = field(default_factory=set)


def parse_tables(dep: str, softdep: str = "", alias: str = "", builtin: str = "") -> ModuleTables:
    tables = ModuleTables()
    for line in dep.splitlines():
        target, sep, deps = line.partition(":")
        if not sep:
            continue
        name = module_name(target.strip())
        tables.paths[name] = target.strip()
        tables.depends[name] = [module_name(d) for d in deps.split()]
    for line in softdep.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "softdep":
            names = [w for w in words[2:] if w not in ("pre:", "post:")]
            tables.softdeps.setdefault(module_name(words[1]), []).extend(names)
    for line in alias.splitlines():
        words = line.split()
        if len(words) == 3 and words[0] == "alias":
            tables.aliases.setdefault(words[1], []).append(module_name(words[2]))
    tables.builtin = {module_name(line.strip()) for line in builtin.splitlines() if line.strip()}
    return tables


def read_tables(moddir: Path) -> ModuleTables:
    def text(name: str) -> str:
        path = moddir / name
        return path.read_text() if path.exists() else ""
    return parse_tables(text("modules.dep"), text("modules.softdep"),
                        text("modules.alias"), text("modules.builtin"))


def module_closure(tables: ModuleTables, wanted: tuple[str, ...]) -> list[str]:
    """Module names to ship for ``wanted``, dependencies before dependents.

    modules.dep lists the full dependency set of a module, so a dependency always has
    fewer entries than its dependents: sorting by that count gives a valid load order.
    Soft dependencies may name an alias (``crypto-crc32c``); every provider is included.
    Built-in modules need nothing.
    """
    pending = [module_name(name) for name in wanted]
    unknown = [n for n in pending if n not in tables.paths and n not in tables.builtin]
    if unknown:
        raise BuildError(f"kernel module {', '.join(unknown)} neither built in nor in the kernel package")
    chosen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in chosen or name in tables.builtin:
            continue
        if name not in tables.paths:  # an alias named by a soft dependency
            pending.extend(tables.aliases.get(name, []))
            continue
        chosen.add(name)
        pending.extend(tables.depends[name])
        pending.extend(tables.softdeps.get(name, []))
    return sorted(chosen, key=lambda n: (len(tables.depends[n]), n))


def run_depmod(runner: CommandRunner, basedir: Path, kernel_version: str) -> None:
    try:
        runner.run(["depmod", "-b", str(basedir), kernel_version])
    except CommandFailed as exc:
        raise BuildError(f"depmod failed: {exc}")


def install_modules(tables: ModuleTables, names: list[str], source_moddir: Path,
                    target_moddir: Path) -> None:
    """Copies modules ``names`` and the kept tables into ``target_moddir`` (same layout)."""
    target_moddir.mkdir(parents=True, exist_ok=True)
    for name in names:
        relpath = tables.paths[name]
        (target_moddir / relpath).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source_moddir / relpath, target_moddir / relpath)
    shipped = {tables.paths[name] for name in names}
    for table in KEPT_TABLES:
        source = source_moddir / table
        if not source.exists():
            continue
        if table == "modules.order":
            lines = [l for l in source.read_text().splitlines() if l.strip() in shipped]
            (target_moddir / table).write_text("".join(l + "\n" for l in lines))
        else:
            shutil.copy2(source, target_moddir / table)
