#!/usr/bin/env bash
# One-command set-up for GoShip (called by `make setup`). Idempotent: every step
# checks first and does nothing when already done, so a second run takes seconds.
#   1. Debian packages (apt-get; update only when something is missing)
#   2. the pinned virtualenv .venv (rebuilt when constraints/pyproject change)
#   3. libvirtd + virtlogd (no systemd here: started directly as daemons)
#   4. the collection link build/collections/ansible_collections/goship/core
#   5. ansible-test's offline pip bootstrap script
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"

PYTHON="${PYTHON:-python3}"
VENV="$REPO/.venv"
VENV_STAMP="$VENV/.goship-setup-stamp"
COLLECTION_LINK="$REPO/build/collections/ansible_collections/goship/core"
LIBVIRT_URI="qemu:///system"
LIBVIRT_WAIT_S=30

APT_PACKAGES=(
    qemu-system-x86 qemu-utils libvirt-daemon-system libvirt-clients libvirt-dev
    pkg-config debootstrap xorriso genisoimage busybox-static crun kmod ovmf
    libxml2-utils cpio zstd squashfs-tools
    build-essential python3-dev git make shellcheck
    cloud-init
    postgresql
    openssh-server
)

log() { echo "setup: $*"; }

install_apt_packages() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "Debian packages present"
        return
    fi
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
}

venv_inputs_hash() {
    {
        "$PYTHON" -c 'import sys; print(sys.version)'
        cat constraints.txt pyproject.toml
    } | sha256sum | cut -d' ' -f1
}

ensure_venv() {
    local want
    want="$(venv_inputs_hash)"
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c '' 2>/dev/null \
        && [ -f "$VENV_STAMP" ] && [ "$(cat "$VENV_STAMP")" = "$want" ]; then
        log "virtualenv up to date ($VENV)"
        return
    fi
    if ! { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c '' 2>/dev/null; }; then
        log "creating virtualenv $VENV"
        "$PYTHON" -m venv --clear "$VENV"
    fi
    log "installing pinned packages from constraints.txt"
    local pip=("$VENV/bin/python" -m pip --disable-pip-version-check -q)
    "${pip[@]}" install -r constraints.txt
    # compat mode puts the repo root on sys.path, so packages added later
    # (goship_ctl/, guest_init/) are importable without reinstalling.
    "${pip[@]}" install --no-deps --no-build-isolation \
        --config-settings editable_mode=compat -e .
    "${pip[@]}" check
    echo "$want" >"$VENV_STAMP"
}

libvirt_answers() {
    # `virsh version` takes ~3.5 s (it probes the hypervisor); `list` answers at once.
    timeout 10 virsh -c "$LIBVIRT_URI" list --all >/dev/null 2>&1
}

ensure_kvm_device_mode() {
    # What Debian's udev rule does on a host with udev: without it (no systemd here) /dev/kvm
    # stays root 0600 and libvirt re-probes QEMU's capabilities on every domain start (4-8 s).
    if [ -c /dev/kvm ] && getent group kvm >/dev/null; then
        chgrp kvm /dev/kvm
        chmod 0660 /dev/kvm
    fi
}

ensure_libvirt() {
    if libvirt_answers; then
        log "libvirtd answers on $LIBVIRT_URI"
        return
    fi
    if ! pgrep -x virtlogd >/dev/null; then
        log "starting virtlogd"
        virtlogd -d
    fi
    if ! pgrep -x libvirtd >/dev/null; then
        log "starting libvirtd"
        libvirtd -d
    fi
    local deadline=$((SECONDS + LIBVIRT_WAIT_S))
    until libvirt_answers; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "setup: libvirtd did not answer on $LIBVIRT_URI within ${LIBVIRT_WAIT_S}s" >&2
            exit 1
        fi
        sleep 0.5
    done
    log "libvirtd answers on $LIBVIRT_URI"
}

ensure_collection_link() {
    mkdir -p "$(dirname "$COLLECTION_LINK")"
    if [ "$(readlink "$COLLECTION_LINK" 2>/dev/null)" != "$REPO" ]; then
        ln -sfn "$REPO" "$COLLECTION_LINK"
        log "linked $COLLECTION_LINK -> $REPO"
    fi
}

# ansible-test bootstraps pip into its sanity virtualenvs with a cached
# get_pip_<version>.py that it would otherwise download from a host we cannot
# reach; the version is the one ansible-test pins for its virtualenvs.
ensure_get_pip_standin() {
    local version target
    version="$("$VENV/bin/python" - <<'EOF'
import re
from pathlib import Path
import ansible_test
source = Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip='([0-9.]+)'", source.read_text()).group(1))
EOF
)"
    target="$HOME/.ansible/test/cache/get_pip_${version//./_}.py"
    mkdir -p "$(dirname "$target")"
    if ! cmp -s scripts/get_pip_offline.py "$target"; then
        cp scripts/get_pip_offline.py "$target"
        log "wrote ansible-test pip bootstrap stand-in $target"
    fi
}

start=$SECONDS
install_apt_packages
ensure_venv
ensure_kvm_device_mode
ensure_libvirt
ensure_collection_link
ensure_get_pip_standin
log "done in $((SECONDS - start))s"
