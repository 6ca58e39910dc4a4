"""Real podman containers for the tests, kept to a private directory.

Everything podman keeps goes under one temporary directory: storage
(graphroot), run state (runroot), its tmpdir, runc's state root, and the
configuration (CONTAINERS_CONF, CONTAINERS_STORAGE_CONF), so nothing in
/etc, /var/lib/containers or /run is used. Here podman needs `--runtime
runc` (crun refuses this host's hybrid cgroup layout) and
`default_ulimits = []` (setrlimit is refused). The image is built locally
from busybox-static (no registry): `podman import` of a small root.
close() removes the containers, pods, image and directory, and what
podman leaves outside it when the lab made it: the cgroups of its
cgroupfs manager (libpod_parent) and the image blob cache
(/var/lib/containers)."""

import glob
import os
import shutil
import subprocess
import tarfile
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SETUP = os.path.join(HERE, "..", "..", "scripts", "setup-podman")
BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "nc", "sleep", "cat", "true")
OUTSIDE = ["/var/lib/containers", "/run/containers", "/run/libpod",
           "/run/runc"]
CGROUPS = "/sys/fs/cgroup/*/libpod_parent"


class PodmanLab:
    def __init__(self, tag):
        subprocess.run([SETUP], check=True)
        self.tag = tag
        self.dir = tempfile.mkdtemp(prefix="rsttrace-podman-")
        self.existed = {p for p in OUTSIDE + glob.glob(CGROUPS)
                        if os.path.exists(p)}
        conf = os.path.join(self.dir, "containers.conf")
        with open(conf, "w") as f:
            f.write("[containers]\ndefault_ulimits = []\n")
        storage = os.path.join(self.dir, "storage.conf")
        with open(storage, "w") as f:
            f.write('[storage]\ndriver = "overlay"\nrunroot = "%s/run"\n'
                    'graphroot = "%s/root"\n' % (self.dir, self.dir))
        self.env = dict(os.environ, CONTAINERS_CONF=conf,
                        CONTAINERS_STORAGE_CONF=storage)
        self.base = ["podman", "--root", self.dir + "/root",
                     "--runroot", self.dir + "/run",
                     "--tmpdir", self.dir + "/tmp",
                     "--runtime", "runc",
                     "--runtime-flag", "root=" + self.dir + "/runc",
                     "--cgroup-manager", "cgroupfs",
                     "--events-backend", "file"]
        self.image = None

    def podman(self, *args, check=True):
        res = subprocess.run(self.base + list(args), env=self.env,
                             capture_output=True, text=True,
                             stdin=subprocess.DEVNULL, timeout=120)
        if check and res.returncode:
            raise RuntimeError("podman %s: %s" % (" ".join(args),
                                                  res.stderr.strip()))
        return res.stdout.strip()

    def build_image(self):
        """A busybox image, localhost/rsttrace-<tag>:1, imported from a
        tar of a root with busybox's applets and /bin/pause (a pod's
        infra process)."""
        root = os.path.join(self.dir, "rootfs")
        os.makedirs(os.path.join(root, "bin"))
        shutil.copy(BUSYBOX, os.path.join(root, "bin", "busybox"))
        for applet in APPLETS:
            os.symlink("busybox", os.path.join(root, "bin", applet))
        with open(os.path.join(root, "bin", "pause"), "w") as f:
            f.write("#!/bin/sh\nexec sleep 999999\n")
        os.chmod(os.path.join(root, "bin", "pause"), 0o755)
        tar = os.path.join(self.dir, "rootfs.tar")
        with tarfile.open(tar, "w") as t:
            t.add(root, arcname=".")
        self.image = "localhost/rsttrace-%s:1" % self.tag
        self.podman("import", "-q", tar, self.image)
        return self.image

    def run(self, name, *cmd, network=None, pod=None):
        """Start a container from the lab's image; its id."""
        args = ["run", "-d", "--name", name]
        if network:
            args += ["--network", network]
        if pod:
            args += ["--pod", pod]
        return self.podman(*args, self.image, *cmd)

    def pod(self, name):
        """A pod with its own (empty) network namespace."""
        return self.podman("pod", "create", "--name", name, "--network",
                           "none", "--infra-image", self.image,
                           "--infra-command", "/bin/pause")

    def pid(self, name):
        return int(self.podman("inspect", "-f", "{{.State.Pid}}", name))

    def exec(self, name, *cmd):
        return subprocess.run(self.base + ["exec", name] + list(cmd),
                              env=self.env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=60)

    def _ours(self):
        """Processes podman left running with the lab's directory in their
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

    def close(self):
        self.podman("pod", "rm", "-af", "-t", "0", check=False)
        self.podman("rm", "-af", "-t", "0", check=False)
        # conmon runs `podman container cleanup` after a container ends;
        # one that ran after the directory is gone would make podman's
        # default storage (/var/lib/containers, /run/libpod) instead
        deadline = time.monotonic() + 30
        while self._ours() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.podman("rmi", "-af", check=False)
        self.podman("system", "reset", "-f", check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        for path in OUTSIDE:
            if path not in self.existed:
                shutil.rmtree(path, ignore_errors=True)
        for top in glob.glob(CGROUPS):
            if top not in self.existed:
                for d in sorted((d for d, _, _ in os.walk(top)),
                                key=len, reverse=True):
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
