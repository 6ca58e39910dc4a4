# Sourced by scripts/vm-image and scripts/vagrant-box: mount what apt needs
# in a chroot, and take a work directory down safely. (sh: variables are
# global, so the functions keep theirs local and prefixed.)
#
# The chroot gets the host's /dev by bind mount. If anything under the work
# directory were still mounted when it is removed, `rm -rf` would walk into
# the host's /dev (devtmpfs) and delete its device nodes: so every mount
# under it is undone first (lazily when busy, which detaches it at once), the
# removal never crosses a file system boundary, and a directory that is still
# mounted is left in place with a message instead.

# chroot_mount ROOT: proc, sys, /dev and /dev/pts inside ROOT; services are
# not started by package scripts (policy-rc.d, removed by chroot_unmount).
chroot_mount() {
    mount -t proc proc "$1/proc"
    mount -t sysfs sys "$1/sys"
    mount --bind /dev "$1/dev"
    mount --bind /dev/pts "$1/dev/pts"
    printf '#!/bin/sh\nexit 101\n' >"$1/usr/sbin/policy-rc.d"
    chmod 755 "$1/usr/sbin/policy-rc.d"
}

# mounts_under DIR: mount points below DIR, deepest first.
mounts_under() {
    awk -v d="${1%/}/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r
}

# chroot_unmount DIR: undo every mount below DIR (a chroot's and its loop
# mounted image alike). Fails if one stays.
chroot_unmount() {
    [ -n "$1" ] && [ -d "$1" ] || return 0
    local _cm_root _cm_left _cm_m
    for _cm_root in "$1" "$1"/*; do
        [ -f "$_cm_root/usr/sbin/policy-rc.d" ] && rm -f "$_cm_root/usr/sbin/policy-rc.d"
    done
    for _ in 1 2 3; do
        _cm_left=$(mounts_under "$1")
        [ -z "$_cm_left" ] && return 0
        for _cm_m in $_cm_left; do umount "$_cm_m" 2>/dev/null || umount -l "$_cm_m" 2>/dev/null; done
    done
    [ -z "$(mounts_under "$1")" ]
}

# remove_workdir DIR: unmount below DIR, then delete it without crossing
# into another file system.
remove_workdir() {
    [ -n "$1" ] && [ -d "$1" ] || return 0
    if ! chroot_unmount "$1"; then
        echo "left $1 in place: still mounted there: $(mounts_under "$1" | tr '\n' ' ')" >&2
        return 1
    fi
    rm -rf --one-file-system "$1"
}
