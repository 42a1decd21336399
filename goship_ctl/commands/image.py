"""``goship-ctl image build``: build (or confirm up to date) the guest image."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from goship_ctl.image.build import Progress, build_image
from goship_ctl.image.errors import BuildError
from goship_ctl.image.paths import default_image_dir
from goship_ctl.image.spec import COMPRESSIONS, DEFAULT_COMPRESSION, KERNEL_METAPACKAGE, ImageSpec

MIB = 1 << 20


def register(subparsers) -> None:
    image = subparsers.add_parser("image", help="guest image tools")
    actions = image.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build", help="build the guest image from Debian packages",
        description="Build vmlinuz, initrd.img and rootfs.squashfs from the host's apt "
                    "sources. Does nothing when the image is current.")
    build.add_argument("--output", type=Path, default=None,
                       help="image directory (default: $GOSHIP_IMAGE_DIR or "
                            "<state_root>/images/default)")
    build.add_argument("--cache-dir", type=Path, default=None,
                       help="downloaded .deb cache (default: <output>/../cache/debs)")
    build.add_argument("--force", action="store_true", help="rebuild even if current")
    build.add_argument("--json", action="store_true", help="print the result as JSON")
    build.add_argument("--compression", choices=COMPRESSIONS, default=DEFAULT_COMPRESSION,
                       help=f"squashfs compression (default: {DEFAULT_COMPRESSION})")
    build.add_argument("--kernel-package", default=KERNEL_METAPACKAGE,
                       help=f"kernel package or metapackage (default: {KERNEL_METAPACKAGE})")
    build.add_argument("--extra-package", action="append", default=[], metavar="NAME",
                       help="also install this package whole (repeatable; for debugging)")
    build.add_argument("--guest-init", type=Path, default=None,
                       help="guest_init package directory (default: the installed one)")
    build.set_defaults(run=run_build, prog=build.prog)


def run_build(args: argparse.Namespace) -> int:
    spec = ImageSpec(kernel_package=args.kernel_package, compression=args.compression,
                     extra_packages=tuple(args.extra_package))

    def emit(line):
        print(f"{args.prog}: {line}", file=sys.stderr, flush=True)

    try:
        result = build_image(args.output or default_image_dir(), spec=spec,
                             cache_dir=args.cache_dir, guest_init=args.guest_init,
                             force=args.force, progress=Progress(emit))
    except BuildError as exc:
        print(f"{args.prog}: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"output": str(result.output), "cached": result.cached,
                          "seconds": round(result.seconds, 2), "manifest": result.manifest},
                         indent=2, sort_keys=True))
    else:
        print(summary(result))
    return 0


def summary(result) -> str:
    m = result.manifest
    state = ("up to date, nothing to do" if result.cached
             else f"built in {result.seconds:.1f} s")
    lines = [f"image {result.output} ({state})",
             f"  kernel            {m['kernel_version']} ({m['kernel_package']['name']} "
             f"{m['kernel_package']['version']})",
             f"  python            {m['python_version']}"]
    for name, info in m["files"].items():
        lines.append(f"  {name:<17} {info['size'] / MIB:6.1f} MiB")
    lines += [f"  total             {m['total_size'] / MIB:6.1f} MiB "
              f"(squashfs {m['squashfs_compression']})",
              f"  packages          {len(m['packages'])}",
              f"  input hash        {m['input_hash'][:16]}"]
    return "\n".join(lines)
