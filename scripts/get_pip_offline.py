"""Offline stand-in for ansible-test's cached get-pip bootstrap script.

ansible-test bootstraps pip into each sanity virtualenv by running
~/.ansible/test/cache/get_pip_<version>.py, which it otherwise downloads from a
host this machine cannot reach. This stand-in does the same job with the
interpreter's bundled ensurepip and then installs the requested pins (e.g.
pip==24.2) through the ordinary package index.
"""

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main() -> None:
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
    pip_args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    if any(not arg.startswith("-") for arg in pip_args):
        subprocess.check_call([sys.executable, "-m", "pip", "install", *pip_args])


if __name__ == "__main__":
    main()
