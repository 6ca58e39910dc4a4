"""A process's cgroup path -> the container it runs in, as each runtime
names its cgroups (cgroupfs and systemd drivers, cgroup v1 and v2):

  podman      /libpod_parent/libpod-ID, /libpod_parent/POD/libpod-ID
              /machine.slice/libpod-ID.scope[/container]
              /machine.slice/machine-libpod_pod_POD.slice/libpod-ID.scope
              /user.slice/.../user@UID.service/.../libpod-ID.scope (rootless)
  docker      /docker/ID, /system.slice/docker-ID.scope
  containerd  /kubepods.slice/.../cri-containerd-ID.scope (CRI, systemd),
              /NAMESPACE/ID (ctr), /system.slice/nerdctl-ID.scope
  CRI-O       /kubepods.slice/.../crio-ID.scope, .../pod<UID>/crio-ID
  Kubernetes  /kubepods/QOS/pod<UID>/ID (cgroupfs driver: the runtime is
              told apart by its state, runtime None here)

ID is the container's 64 hex digits; the runtimes' monitor processes
(libpod-conmon-ID, crio-conmon-ID) are not the container.
"""

import collections
import functools
import re

_ID = r"([0-9a-f]{64})"
_NAMED = (
    ("podman", re.compile(r"^libpod-(?!conmon-)%s(?:\.scope)?$" % _ID)),
    ("cri-o", re.compile(r"^crio-(?!conmon-)%s(?:\.scope)?$" % _ID)),
    ("containerd", re.compile(r"^cri-containerd-%s\.scope$" % _ID)),
    ("containerd", re.compile(r"^nerdctl-%s\.scope$" % _ID)),
    ("docker", re.compile(r"^docker-%s\.scope$" % _ID)),
)
_BARE = re.compile(r"^%s$" % _ID)
_K8S_POD = re.compile(r"^(?:kubepods-(?:[a-z]+-)?)?pod([0-9a-f_-]{36})"
                      r"(?:\.slice)?$")
_PODMAN_POD = re.compile(r"^machine-libpod_pod_%s\.slice$" % _ID)

# runtime: "podman", "docker", "containerd", "cri-o", or None (a bare ID
# under kubepods: whichever runtime has it); namespace: containerd's;
# pod_uid: the Kubernetes pod's; podman_pod: the podman pod's ID.
CgroupMatch = collections.namedtuple(
    "CgroupMatch", "runtime id namespace pod_uid podman_pod")


@functools.lru_cache(maxsize=4096)
def container_of(path):
    """The CgroupMatch of a cgroup path, or None outside any container."""
    if not path:
        return None
    parts = [p for p in path.split("/") if p]
    for i in range(len(parts) - 1, -1, -1):
        found = _match(parts, i)
        if found:
            return found
    return None


def _match(parts, i):
    name = parts[i]
    above = parts[:i]
    pod_uid = podman_pod = None
    for p in above:
        m = _K8S_POD.match(p)
        if m:
            pod_uid = m.group(1).replace("_", "-")
        m = _PODMAN_POD.match(p)
        if m:
            podman_pod = m.group(1)
    for runtime, rx in _NAMED:
        m = rx.match(name)
        if m:
            if runtime == "podman" and not podman_pod and above and \
                    _BARE.match(above[-1]):
                podman_pod = above[-1]      # /libpod_parent/POD/libpod-ID
            return CgroupMatch(runtime, m.group(1), None, pod_uid,
                               podman_pod)
    m = _BARE.match(name)
    if not m or not above:
        return None
    if above[-1] == "docker":
        return CgroupMatch("docker", m.group(1), None, pod_uid, None)
    if pod_uid or any(p.startswith("kubepods") for p in above):
        return CgroupMatch(None, m.group(1), None, pod_uid, None)
    if len(above) == 1:                     # /NAMESPACE/ID: containerd
        return CgroupMatch("containerd", m.group(1), above[0], None, None)
    return None
