"""A container's name, image and pod, from its runtime's own state:

  podman   its conmon (the container's parent): -n NAME, -b BUNDLE; the
           image from c/storage's containers.json beside the bundle; a
           pod's name from `podman pod inspect`, run the way conmon's
           --exit-command runs podman (root's containers only)
  CRI-O    its conmon's bundle (or /run/containers/storage/...): the OCI
           config.json's annotations (io.kubernetes.cri-o.*, and the
           kubelet's labels io.kubernetes.pod.name / .namespace /
           io.kubernetes.container.name)
  containerd  the task bundle's config.json
           (/run/containerd/io.containerd.runtime.v2.task/NS/ID): CRI
           annotations io.kubernetes.cri.container-name, image-name,
           sandbox-name, sandbox-namespace, container-type; nerdctl/name
  docker   /var/lib/docker/containers/ID/config.v2.json: Name,
           Config.Image, Config.Labels (io.kubernetes.* under dockershim)

Every file is read with procfs.read_file's rule (owned by root for the
fixed places, by the user conmon runs as for the paths a conmon names) and parsed defensively: a malformed file gives
a container with only its runtime and id, never an error.
"""

import collections
import glob
import json
import os
import stat
import subprocess

from rsttrace.context.procfs import STATE_LIMIT, read_file

Container = collections.namedtuple(
    "Container", "runtime id name image pod_namespace pod_name sandbox")

ROOTS = {
    "docker": "/var/lib/docker/containers",
    "containerd": "/run/containerd/io.containerd.runtime.v2.task",
    "cri-o": "/run/containers/storage/overlay-containers",
}
CONMON_DEPTH = 16        # processes above a container process to its conmon
PODMAN_TIMEOUT_S = 10


def _json(raw):
    try:
        obj = json.loads(raw)
    except (TypeError, ValueError, UnicodeDecodeError, RecursionError):
        return None
    return obj if isinstance(obj, dict) else None


def _str(value):
    return value if isinstance(value, str) and value else None


def _dict(obj, key):
    value = obj.get(key) if isinstance(obj, dict) else None
    return value if isinstance(value, dict) else {}


def conmon_options(argv):
    """conmon's options that matter here: -c ID, -n NAME, -b BUNDLE, the
    --exit-command and its --exit-command-arg list."""
    opts, exit_args, i = {}, [], 1
    while i < len(argv):
        arg = argv[i]
        if arg in ("-c", "-n", "-b", "--exit-command") and i + 1 < len(argv):
            opts[arg] = argv[i + 1]
            i += 2
        elif arg == "--exit-command-arg" and i + 1 < len(argv):
            exit_args.append(argv[i + 1])
            i += 2
        else:
            i += 1
    opts["exit-args"] = exit_args
    return opts


class Runtimes:
    def __init__(self, proc, roots=None, run=subprocess.run, state_uid=0):
        self.proc = proc
        self.roots = dict(ROOTS, **(roots or {}))
        self.run = run
        self.fixed = (state_uid,)    # who owns the state in ROOTS
        self._pods = {}              # podman pod ID -> name

    def describe(self, pid, match):
        """The Container a process (in the container `match`, a
        cgroups.CgroupMatch) runs in."""
        runtime = match.runtime
        if runtime in ("podman", "cri-o"):
            found = self._conmon(pid, match)
            if found:
                return found
        if runtime in (None, "docker"):
            found = self._docker(match)
            if found:
                return found
        if runtime in (None, "containerd"):
            found = self._containerd(match)
            if found:
                return found
        if runtime in (None, "cri-o"):
            found = self._oci(match, "cri-o", os.path.join(
                self.roots["cri-o"], match.id, "userdata", "config.json"),
                self.fixed)
            if found:
                return found
        return Container(runtime, match.id, None, None, None, None, False)

    # -- conmon: podman and CRI-O ------------------------------------------

    def _conmon(self, pid, match):
        for _ in range(CONMON_DEPTH):
            pid = self.proc.ppid(pid)
            if not pid or pid <= 1:
                return None
            argv = self.proc.cmdline(pid)
            if argv and os.path.basename(argv[0]) == "conmon":
                break
        else:
            return None
        opts = conmon_options(argv)
        uid = self.proc.uid(pid)
        if opts.get("-c") != match.id or uid is None or "-b" not in opts:
            return None
        owners = {uid}          # a user's conmon names only that user's files
        config = os.path.join(opts["-b"], "config.json")
        if match.runtime == "cri-o":
            return self._oci(match, "cri-o", config, owners)
        spec = _json(read_file(config, STATE_LIMIT, owners)) or {}
        ann = _dict(spec, "annotations")
        pod = self._podman_pod(match.podman_pod, opts, uid) \
            if match.podman_pod else None
        return Container("podman", match.id, _str(opts.get("-n")),
                         self._podman_image(opts["-b"], match.id, owners),
                         None, pod, bool(match.podman_pod) and
                         "io.kubernetes.cri-o.SandboxID" not in ann)

    def _podman_image(self, bundle, cid, owners):
        """The image name c/storage recorded for the container, in
        GRAPHROOT/DRIVER-containers/containers.json (the bundle is
        GRAPHROOT/DRIVER-containers/ID/userdata)."""
        path = os.path.join(os.path.dirname(os.path.dirname(
            os.path.normpath(bundle))), "containers.json")
        try:
            entries = json.loads(read_file(path, STATE_LIMIT, owners))
        except (TypeError, ValueError, UnicodeDecodeError, RecursionError):
            return None
        for entry in entries if isinstance(entries, list) else ():
            if isinstance(entry, dict) and entry.get("id") == cid:
                meta = _json(entry.get("metadata")) or {}
                return _str(meta.get("image-name"))
        return None

    def _podman_pod(self, pod_id, opts, uid):
        """A podman pod's name, asked of podman itself the way conmon's
        exit command runs it (same storage and state options). Only for
        root's containers, with a root-owned podman nobody else can
        change."""
        if pod_id in self._pods:
            return self._pods[pod_id]
        name = None
        exe, args = opts.get("--exit-command"), opts["exit-args"]
        if uid == 0 and exe and "container" in args and _trusted_exe(exe):
            argv = [exe] + args[:args.index("container")] + [
                "pod", "inspect", "--format", "{{.Name}}", pod_id]
            try:
                res = self.run(argv, capture_output=True, text=True,
                               timeout=PODMAN_TIMEOUT_S,
                               stdin=subprocess.DEVNULL)
                if res.returncode == 0:
                    name = _str(res.stdout.strip())
            except (OSError, subprocess.SubprocessError):
                name = None
        self._pods[pod_id] = name
        return name

    # -- OCI bundles: CRI-O and containerd --------------------------------

    def _oci(self, match, runtime, config, owners):
        spec = _json(read_file(config, STATE_LIMIT, owners))
        if spec is None:
            return None
        ann = _dict(spec, "annotations")
        if runtime == "cri-o":
            labels = _json(ann.get("io.kubernetes.cri-o.Labels")) or {}
            get = lambda k: _str(ann.get(k)) or _str(labels.get(k))
            return Container(
                "cri-o", match.id, get("io.kubernetes.container.name"),
                _str(ann.get("io.kubernetes.cri-o.ImageName")),
                get("io.kubernetes.pod.namespace"),
                get("io.kubernetes.pod.name"),
                ann.get("io.kubernetes.cri-o.ContainerType") == "sandbox")
        cri = "io.kubernetes.cri."
        return Container(
            "containerd", match.id,
            _str(ann.get(cri + "container-name")) or
            _str(ann.get("nerdctl/name")),
            _str(ann.get(cri + "image-name")),
            _str(ann.get(cri + "sandbox-namespace")),
            _str(ann.get(cri + "sandbox-name")),
            ann.get(cri + "container-type") == "sandbox")

    def _containerd(self, match):
        pattern = os.path.join(self.roots["containerd"],
                               match.namespace or "*", match.id)
        for bundle in sorted(glob.glob(pattern)):
            if os.path.basename(os.path.dirname(bundle)) == "moby":
                continue                     # docker's: see _docker
            found = self._oci(match, "containerd",
                              os.path.join(bundle, "config.json"),
                              self.fixed)
            if found:
                return found
        return None

    # -- docker -------------------------------------------------------------

    def _docker(self, match):
        conf = _json(read_file(os.path.join(
            self.roots["docker"], match.id, "config.v2.json"), STATE_LIMIT,
            self.fixed))
        if conf is None:
            return None
        config = _dict(conf, "Config")
        labels = _dict(config, "Labels")
        name = _str(labels.get("io.kubernetes.container.name")) or \
            (_str(conf.get("Name")) or "").lstrip("/") or None
        return Container(
            "docker", match.id, name, _str(config.get("Image")),
            _str(labels.get("io.kubernetes.pod.namespace")),
            _str(labels.get("io.kubernetes.pod.name")),
            labels.get("io.kubernetes.docker.type") == "podsandbox")


def _trusted_exe(path):
    """A root-owned regular file nobody else may write."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return (stat.S_ISREG(st.st_mode) and st.st_uid == 0 and
            not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH))
