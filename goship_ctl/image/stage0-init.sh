#!/bin/sh
# GoShip stage0 (/init of initrd.img, run by the kernel as PID 1 under busybox sh).
# Loads the modules that reach the root image, mounts the read-only squashfs root
# (default /dev/vda) as the lower layer of an overlay whose upper layer is a tmpfs, and
# hands PID 1 to /sbin/goship-init with switch_root.
# Kernel command line: goship.root=<device> overrides the root device; goship.debug=1
# drops to a shell instead of powering off when something fails.
export PATH=/bin
root=/dev/vda
debug=0

fail() {
    echo "goship stage0: error: $*"
    if [ "$debug" = 1 ]; then
        exec sh
    fi
    poweroff -f
}

mount -t devtmpfs -o nosuid devtmpfs /dev || fail "cannot mount /dev"
mount -t proc -o nosuid,nodev,noexec proc /proc || fail "cannot mount /proc"
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys || fail "cannot mount /sys"

read -r cmdline < /proc/cmdline
for arg in $cmdline; do
    case "$arg" in
        goship.root=*) root="${arg#goship.root=}" ;;
        goship.debug=1) debug=1 ;;
    esac
done

# Dependencies come first in load.list (computed from modules.dep at build time).
while read -r module; do
    insmod "/lib/modules/$module" || fail "cannot load $module"
done < /lib/modules/load.list

# virtio_blk probes synchronously, but the node can lag: wait at most 10 s.
tries=0
while [ ! -b "$root" ]; do
    tries=$((tries + 1))
    [ "$tries" -gt 200 ] && fail "root device $root did not appear"
    sleep 0.05
done

mount -t squashfs -o ro "$root" /lower || fail "cannot mount $root (squashfs)"
mount -t tmpfs -o mode=0755 tmpfs /rw || fail "cannot mount the tmpfs upper layer"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fail "cannot mount the overlay root"
[ -x /newroot/sbin/goship-init ] || fail "/sbin/goship-init missing from $root"

read -r uptime _ < /proc/uptime
echo "goship stage0: $root mounted at ${uptime}s, switching to /sbin/goship-init"
for fs in dev proc sys; do
    mount --move "/$fs" "/newroot/$fs" || fail "cannot move /$fs"
done
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
exec switch_root /newroot /sbin/goship-init
