"""Real podman containers for the tests, kept to a private directory
(private_podman.py: storage, run state, configuration, what podman leaves
outside removed by close()). The image is built locally from
busybox-static (no registry): `podman import` of a small root. close()
also removes the containers, pods, image and storage."""

import os
import shutil
import subprocess
import tarfile

from private_podman import PrivatePodman

HERE = os.path.dirname(os.path.abspath(__file__))
SETUP = os.path.join(HERE, "..", "..", "scripts", "setup-podman")
BUSYBOX = "/bin/busybox"
APPLETS = ("sh", "nc", "sleep", "cat", "true")


class PodmanLab(PrivatePodman):
    def __init__(self, tag):
        subprocess.run([SETUP], check=True)
        super().__init__()
        self.tag = tag
        self.image = None

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
