#!/usr/bin/python3
"""How rsttrace's tests run podman: privately, so that the host is left as
it was found (the operator's own `podman images`, /etc and /run untouched).

Everything podman keeps goes under one directory made for the run: run
state (runroot), its tmpdir (the events log, file locks instead of the
shared /dev/shm/libpod_lock), runc's state root, the network configuration
(not /etc/cni/net.d, whose networks `podman system reset` would remove)
and TMPDIR (image copies, buildah's build directories). Storage
(graphroot, with libpod's database in it) is there too, or, for images
worth keeping, rsttrace's own cache: CACHE, which scripts/test-image and
the exporter's image test share. A run holds the cache's lock and removes
the database when it ends, as it is bound to the run's directories (one
run at a time; the images stay). Here podman needs `--runtime runc` (crun
refuses this host's hybrid cgroup layout) and `default_ulimits = []`
(setrlimit is refused). The configuration reaches podman by
CONTAINERS_CONF and CONTAINERS_STORAGE_CONF, the rest by flags: `env` and
`base` for Python, RSTTRACE_PODMAN (a wrapper script) for shell scripts.

Some things podman 4.3 makes outside whatever it is told: `podman
container cleanup` (run by conmon when a container ends) calls runc
without its root (/run/runc), the cgroupfs manager's cgroups
(libpod_parent/...) stay after their containers, and the blob-info cache
is /var/lib/containers/cache; now and then something of podman's uses
the shared-memory locks (/dev/shm/libpod_lock) all the same. close()
removes them when this run made them.

    sudo tests/private_podman.py CMD...    runs CMD with the cache's
                                           settings (scripts/test-image)"""

import fcntl
import glob
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

CACHE = "/var/cache/rsttrace-podman"
OUTSIDE = ["/var/lib/containers", "/run/containers", "/run/libpod",
           "/run/runc"]
# libpod's shared-memory locks: the run's podman uses file locks, but a
# podman that misses its configuration (an exit command) makes this
SHM_LOCK = "/dev/shm/libpod_lock"
CGROUPS = "/sys/fs/cgroup/*/libpod_parent"
ID = re.compile(r"(libpod-)?([0-9a-f]{64})$")


class PrivatePodman:
    def __init__(self, graphroot=None):
        """graphroot: CACHE to keep the images; None keeps them in the
        run's directory, removed with it."""
        self.lock = _lock(graphroot) if graphroot else None
        self.before = outside_state()
        self.dir = tempfile.mkdtemp(prefix="rsttrace-podman-")
        self.graphroot = graphroot or self.dir + "/root"
        self.ids = {}
        self.closed = False
        conf = self._write("containers.conf", (
            '[containers]\ndefault_ulimits = []\n\n'
            '[engine]\nlock_type = "file"\n\n'
            '[network]\nnetwork_config_dir = "%s/cni"\n' % self.dir))
        storage = self._write("storage.conf", (
            '[storage]\ndriver = "overlay"\nrunroot = "%s/run"\n'
            'graphroot = "%s"\n' % (self.dir, self.graphroot)))
        os.mkdir(self.dir + "/scratch")
        self.env = dict(os.environ, CONTAINERS_CONF=conf,
                        CONTAINERS_STORAGE_CONF=storage,
                        TMPDIR=self.dir + "/scratch",
                        RSTTRACE_PODMAN=self.dir + "/podman")
        self.base = ["podman", "--root", self.graphroot,
                     "--runroot", self.dir + "/run",
                     "--tmpdir", self.dir + "/tmp",
                     "--runtime", "runc",
                     "--runtime-flag", "root=" + self.dir + "/runc",
                     "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file"]
        self._write("podman", '#!/bin/sh\nexec %s "$@"\n' %
                    shlex.join(self.base), mode=0o755)

    def _write(self, name, text, mode=0o644):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def podman(self, *args, check=True, timeout=120):
        res = subprocess.run(self.base + list(args), env=self.env,
                             capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=timeout)
        if check and res.returncode:
            raise RuntimeError("podman %s: %s" % (" ".join(args),
                                                  res.stderr[-3000:].strip()))
        return res.stdout.strip()

    def processes(self):
        """Processes podman left running with the run's directory in their
        command line: conmon and the exit commands it starts."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if self.dir.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
        return found

    def _events(self):
        """{ID: name} of the containers and pods this run made, from its
        events log."""
        ids = {}
        try:
            with open(self.dir + "/tmp/events/events.log") as f:
                for line in f:
                    event = json.loads(line)
                    if event.get("Type") in ("container", "pod"):
                        ids[event["ID"]] = event.get("Name")
        except (OSError, ValueError, KeyError):
            pass
        return ids

    def close(self):
        """Remove this run's containers and pods, its directory (with the
        storage, or the cache's database) and what podman left outside."""
        if self.closed:
            return
        self.closed = True
        self.podman("pod", "rm", "-af", "-t", "0", check=False)
        self.podman("rm", "-af", "-t", "0", check=False)
        # conmon runs `podman container cleanup` after a container ends;
        # one that ran after the directory is gone would make podman's
        # default storage (/var/lib/containers, /run/libpod) instead
        deadline = time.monotonic() + 30
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.ids = self._events()
        if self.lock:
            shutil.rmtree(self.graphroot + "/libpod", ignore_errors=True)
        else:
            self.podman("rmi", "-af", check=False)
            self.podman("system", "reset", "-f", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        for path in OUTSIDE:
            if path not in self.before:
                shutil.rmtree(path, ignore_errors=True)
        if SHM_LOCK not in self.before:
            try:
                os.remove(SHM_LOCK)
            except FileNotFoundError:
                pass
        for top in glob.glob(CGROUPS):
            _remove_cgroups(top, None if top not in self.before else
                            self.ids)
        if self.lock:
            self.lock.close()

    def leftovers(self):
        """After close(): (what is on the host and was not before, what
        was and is gone), of outside_state(); other podman users' cgroups
        (named after containers and pods not this run's) left out."""
        def ours(path):
            return not path.startswith("/sys/fs/cgroup/") or all(
                m is None or m.group(2) in self.ids
                for m in map(ID.match, path.split("/")))
        after = outside_state()
        return ({p for p in after - self.before if ours(p)},
                {p for p in self.before - after if ours(p)})


def _lock(graphroot):
    """The storage's lock, held while a run uses it (flock: released when
    the process ends): libpod's database there is bound to one run's
    directories."""
    os.makedirs(graphroot, mode=0o700, exist_ok=True)
    lock = open(os.path.join(graphroot, "rsttrace.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    # a run that ended without close() left its database
    shutil.rmtree(graphroot + "/libpod", ignore_errors=True)
    return lock


def outside_state(depth=3):
    """Where podman could leave something on the host, as it is now: the
    paths under OUTSIDE and /etc/cni (to depth), the shared-memory locks,
    the cgroups of podman and buildah, the mounts under OUTSIDE and CACHE."""
    found = set()
    for top in OUTSIDE + ["/etc/cni", SHM_LOCK]:
        for d, dirs, files in os.walk(top):
            found.update(os.path.join(d, n) for n in dirs + files)
            if d.count("/") - top.count("/") >= depth - 1:
                dirs.clear()
        if os.path.exists(top):
            found.add(top)
    found.update(d for d, _, _ in os.walk("/sys/fs/cgroup")
                 if "libpod" in d or "buildah" in d)
    with open("/proc/self/mountinfo") as f:
        found.update("mount " + line.split()[4] for line in f
                     if line.split()[4].startswith(tuple(OUTSIDE + [CACHE])))
    return found


def _remove_cgroups(top, ids):
    """The empty cgroups under top (ids None: top too) named after one of
    ids (libpod-ID for a container, ID for a pod), deepest first."""
    for d in sorted((d for d, _, _ in os.walk(top)), key=len, reverse=True):
        name = os.path.basename(d)
        if ids is None or name.removeprefix("libpod-") in ids:
            try:
                os.rmdir(d)
            except OSError:
                pass


def main(argv):
    if os.geteuid() or not argv:
        print("usage: sudo tests/private_podman.py CMD... (runs CMD with "
              "podman's storage in %s, RSTTRACE_PODMAN set)" % CACHE,
              file=sys.stderr)
        return 2
    podman = PrivatePodman(CACHE)
    try:
        return subprocess.run(argv, env=podman.env).returncode
    finally:
        podman.close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
