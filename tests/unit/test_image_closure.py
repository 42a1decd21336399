"""Dependency closure: parsing ``apt-cache depends --recurse`` and choosing alternatives."""

import pytest

from goship_ctl.image.closure import (
    Alternative, UnknownPackage, Unsatisfiable, parse_depends, select_closure,
)

# Shapes taken from real bookworm output: an alternative group ("|"), a virtual package
# with providers, a real package with a provider listed, PreDepends, :any qualifiers.
DEPENDS = """\
linux-image-amd64
  Depends: linux-image-6.1.0-57-amd64
libpython3.11-stdlib
  Depends: libpython3.11-minimal
 |Depends: media-types
  Depends: mime-support
  Depends: libffi8
crun
  Depends: libc6
  Depends: libsystemd0
    libelogind0
linux-image-6.1.0-57-amd64
  Depends: kmod
  Depends: linux-base
 |Depends: initramfs-tools
  Depends: <linux-initramfs-tool>
    dracut
    initramfs-tools
    tiny-initramfs
  Recommends: firmware-linux-free
python3.11-minimal
  PreDepends: libc6
  Depends: libpython3.11-minimal
  Depends: libexpat1:any
libpython3.11-minimal
  Depends: libc6
libffi8
  Depends: libc6
libc6
  Depends: libgcc-s1
libgcc-s1
  Depends: libc6
libsystemd0
  Depends: libc6
libelogind0
  Depends: libc6
kmod
  Depends: libc6
libexpat1
  Depends: libc6
media-types
mime-support
  Depends: media-types
linux-base
  Depends: debconf
debconf
initramfs-tools
dracut
tiny-initramfs
<linux-initramfs-tool>
<debconf-2.0>
"""
UNFOLLOWED = frozenset({"linux-base", "initramfs-tools", "media-types", "mime-support",
                        "linux-initramfs-tool"})


def test_parse_groups_alternatives_and_providers():
    graph = parse_depends(DEPENDS)
    stdlib = graph.packages["libpython3.11-stdlib"]
    assert stdlib[1] == [Alternative("media-types"), Alternative("mime-support")]
    kernel = graph.packages["linux-image-6.1.0-57-amd64"]
    assert kernel[2] == [
        Alternative("initramfs-tools"),
        Alternative("linux-initramfs-tool", True, ("dracut", "initramfs-tools", "tiny-initramfs")),
    ]
    assert graph.packages["crun"][1] == [Alternative("libsystemd0", False, ("libelogind0",))]


def test_parse_keeps_predepends_drops_other_kinds_and_qualifiers():
    graph = parse_depends(DEPENDS)
    names = [[alt.name for alt in g] for g in graph.packages["python3.11-minimal"]]
    assert names == [["libc6"], ["libpython3.11-minimal"], ["libexpat1"]]
    assert len(graph.packages["linux-image-6.1.0-57-amd64"]) == 3  # Recommends ignored
    assert "linux-initramfs-tool" in graph.virtual and "debconf-2.0" in graph.virtual


def test_closure_follows_needed_packages_and_skips_unfollowed_groups():
    graph = parse_depends(DEPENDS)
    chosen = select_closure(graph, ["linux-image-amd64", "python3.11-minimal",
                                    "libpython3.11-stdlib", "crun"], UNFOLLOWED)
    assert set(chosen) == {
        "linux-image-amd64", "linux-image-6.1.0-57-amd64", "kmod", "libc6", "libgcc-s1",
        "python3.11-minimal", "libpython3.11-minimal", "libexpat1", "libpython3.11-stdlib",
        "libffi8", "crun", "libsystemd0",
    }
    assert chosen[:4] == ["linux-image-amd64", "python3.11-minimal", "libpython3.11-stdlib", "crun"]


def test_closure_without_skip_list_takes_first_alternative_only():
    graph = parse_depends(DEPENDS)
    chosen = select_closure(graph, ["linux-image-6.1.0-57-amd64", "libpython3.11-stdlib"])
    assert "initramfs-tools" in chosen and "dracut" not in chosen and "tiny-initramfs" not in chosen
    assert "media-types" in chosen and "mime-support" not in chosen
    assert "linux-base" in chosen


def test_virtual_dependency_resolves_to_first_real_provider():
    graph = parse_depends("a\n  Depends: <v>\n    missing\n    b\nb\n<v>\n")
    assert select_closure(graph, ["a"]) == ["a", "b"]


def test_dependency_already_chosen_satisfies_alternative_group():
    graph = parse_depends("a\n |Depends: x\n  Depends: y\nb\n  Depends: y\nx\ny\n")
    assert select_closure(graph, ["b", "a"]) == ["b", "a", "y"]


def test_unknown_root_is_reported():
    with pytest.raises(UnknownPackage, match="'nope' is not found in the configured apt sources"):
        select_closure(parse_depends(DEPENDS), ["crun", "nope"])


def test_virtual_root_is_reported():
    with pytest.raises(UnknownPackage, match="virtual"):
        select_closure(parse_depends(DEPENDS), ["debconf-2.0"])


def test_unsatisfiable_dependency_names_the_package():
    graph = parse_depends("a\n  Depends: <v>\n<v>\n")
    with pytest.raises(Unsatisfiable, match="dependency of 'a' cannot be satisfied: v"):
        select_closure(graph, ["a"])
