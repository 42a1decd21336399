"""`molecule test` for the default scenario: converge with a real VM, idempotence, verify."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_molecule_default_scenario(guest_image):
    image_dir, _manifest = guest_image
    venv_bin = Path(sys.executable).parent
    env = dict(os.environ, GOSHIP_PYTHON=sys.executable, GOSHIP_IMAGE_DIR=str(image_dir),
               PATH=f"{venv_bin}{os.pathsep}{os.environ['PATH']}", ANSIBLE_NOCOLOR="1", PY_COLORS="0")
    proc = subprocess.run([str(venv_bin / "molecule"), "test", "--scenario-name", "default"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"molecule test failed (rc {proc.returncode}):\n{output[-8000:]}"
    assert "idempotence" in output.lower()
