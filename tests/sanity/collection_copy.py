"""The sanity copy: the collection as git sees it, at a path ansible-test accepts.

ansible-test needs the working directory to be physically inside
.../ansible_collections/<namespace>/<name> (it resolves symlinks), and it lists files
with git from the nearest .git upwards; so the copy is its own git work tree.
"""

import os
import shutil
import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SANITY_COLLECTION = REPO_ROOT / "build" / "sanity" / "ansible_collections" / "goship" / "core"
VENV_BIN = REPO_ROOT / ".venv" / "bin"


def collection_files(repo: Path) -> list[str]:
    """Git-tracked and untracked-but-not-ignored files that exist in the work tree."""
    listed = subprocess.run(
        ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        check=True, capture_output=True,
    ).stdout.decode().split("\0")
    return [name for name in listed if name and os.path.lexists(repo / name)]


def copy_collection(repo: Path, target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    for name in collection_files(repo):
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / name, destination, follow_symlinks=False)
    subprocess.run(["git", "init", "-q", str(target)], check=True)


def sanity_env(collection: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The copy is the collection under test: resolve goship.core to it, not to the repo link
    # (ansible-lint's syntax check needs the FQCNs of our modules and roles to resolve).
    env["ANSIBLE_COLLECTIONS_PATH"] = str(collection.parents[2])
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


def run_in_collection(command: list[str], collection: Path, timeout_s: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        command, cwd=collection, env=sanity_env(collection), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout_s, check=False,
    )
