"""Where images, caches and the sources the builder hashes live."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

DEFAULT_STATE_ROOT = Path("/var/lib/goship")
IMAGE_PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = IMAGE_PACKAGE_DIR.parent.parent


def state_root() -> Path:
    return Path(os.environ.get("GOSHIP_STATE_ROOT") or DEFAULT_STATE_ROOT)


def default_image_dir() -> Path:
    """``$GOSHIP_IMAGE_DIR``, else ``<state_root>/images/default``."""
    override = os.environ.get("GOSHIP_IMAGE_DIR")
    return Path(override) if override else state_root() / "images" / "default"


def default_cache_dir(output: Path) -> Path:
    """Downloaded .debs, shared by the images built next to ``output``."""
    return output.parent / "cache" / "debs"


def image_dir_for_tests() -> Path:
    """The image the test suite builds once and every VM test reuses.

    ``$GOSHIP_IMAGE_DIR`` wins so a run can point the tests at another image.
    """
    override = os.environ.get("GOSHIP_IMAGE_DIR")
    return Path(override) if override else REPO_ROOT / "build" / "image"


def guest_init_source_dir() -> Path | None:
    """The ``guest_init`` package directory, found without importing it."""
    spec = importlib.util.find_spec("guest_init")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))
