"""Containers from cgroup paths and runtime state (rsttrace.context.cgroups,
runtimes, containers), on recorded cgroup paths and state files laid out
as each runtime documents them. podman also runs for real
(tests/integration/test_containers.py); docker, containerd and CRI-O are
covered here only."""

import json
import os

import pytest

import fakeproc
from rsttrace.context.cgroups import container_of
from rsttrace.context.containers import ContainerIndex, Pod
from rsttrace.context.procfs import Proc
from rsttrace.context.runtimes import Runtimes, conmon_options

ID = "4c1a6e2b9f0d3c5a7e8b1d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8f0a1c"
SANDBOX = "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e8d"
POD_UID = "3f1e2d4c-5b6a-4789-8a9b-0c1d2e3f4a5b"
HOST_NS, CTR_NS = 4026531840, 4026532500

CGROUPS = [
    # (path, runtime, namespace, pod uid, podman pod)
    ("/libpod_parent/libpod-" + ID, "podman", None, None, None),
    ("/libpod_parent/%s/libpod-%s" % (SANDBOX, ID), "podman", None, None,
     SANDBOX),
    ("/machine.slice/libpod-%s.scope" % ID, "podman", None, None, None),
    ("/machine.slice/libpod-%s.scope/container" % ID, "podman", None, None,
     None),
    ("/machine.slice/machine-libpod_pod_%s.slice/libpod-%s.scope"
     % (SANDBOX, ID), "podman", None, None, SANDBOX),
    ("/user.slice/user-1000.slice/user@1000.service/user.slice/"
     "libpod-%s.scope" % ID, "podman", None, None, None),
    ("/docker/" + ID, "docker", None, None, None),
    ("/system.slice/docker-%s.scope" % ID, "docker", None, None, None),
    ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod%s"
     ".slice/cri-containerd-%s.scope" % (POD_UID.replace("-", "_"), ID),
     "containerd", None, POD_UID, None),
    ("/kubepods.slice/kubepods-pod%s.slice/crio-%s.scope"
     % (POD_UID.replace("-", "_"), ID), "cri-o", None, POD_UID, None),
    ("/kubepods/besteffort/pod%s/crio-%s" % (POD_UID, ID), "cri-o", None,
     POD_UID, None),
    ("/kubepods/burstable/pod%s/%s" % (POD_UID, ID), None, None, POD_UID,
     None),
    ("/default/" + ID, "containerd", "default", None, None),
    ("/system.slice/nerdctl-%s.scope" % ID, "containerd", None, None, None),
]


@pytest.mark.parametrize("path,runtime,namespace,pod_uid,podman_pod",
                         CGROUPS)
def test_cgroup_paths(path, runtime, namespace, pod_uid, podman_pod):
    m = container_of(path)
    assert (m.runtime, m.id, m.namespace, m.pod_uid, m.podman_pod) == \
        (runtime, ID, namespace, pod_uid, podman_pod)


@pytest.mark.parametrize("path", [
    None, "", "/", "/user.slice/user-1000.slice/session-3.scope",
    "/libpod_parent/conmon", "/machine.slice/libpod-conmon-%s.scope" % ID,
    "/kubepods.slice/kubepods-pod%s.slice/crio-conmon-%s.scope"
    % (POD_UID.replace("-", "_"), ID),
    "/system.slice/docker.service", "/a/b/" + ID, "/docker/" + ID[:12],
    "/docker/" + ID.upper()])
def test_not_containers(path):
    assert container_of(path) is None


# -- state files --------------------------------------------------------------

def write(path, obj):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(obj if isinstance(obj, str) else json.dumps(obj))
    return path


@pytest.fixture
def world(tmp_path):
    """(proc root, state roots, Runtimes)."""
    proc = tmp_path / "proc"
    proc.mkdir()
    roots = {"docker": str(tmp_path / "docker"),
             "containerd": str(tmp_path / "containerd"),
             "cri-o": str(tmp_path / "crio")}
    calls = []

    def run(argv, **kw):
        calls.append(argv)

        class Done:
            returncode = 0
            stdout = "shop-pod\n"
        return Done()
    rt = Runtimes(Proc(str(proc)), roots=roots, run=run,
                  state_uid=os.getuid())
    rt.calls = calls
    return proc, roots, rt


def describe(world, pid, cgroup):
    proc, roots, rt = world
    return rt.describe(pid, container_of(cgroup))


def test_docker(world):
    proc, roots, rt = world
    write(os.path.join(roots["docker"], ID, "config.v2.json"), {
        "ID": ID, "Name": "/web", "Driver": "overlay2",
        "State": {"Running": True, "Pid": 4242},
        "Config": {"Hostname": ID[:12], "Image": "nginx:1.25",
                   "Labels": {"maintainer": "NGINX"}},
        "Image": "sha256:" + SANDBOX})
    fakeproc.add(proc, 4242, "nginx", cgroup="/docker/" + ID)
    ctr = describe(world, 4242, "/system.slice/docker-%s.scope" % ID)
    assert (ctr.runtime, ctr.id, ctr.name, ctr.image, ctr.pod_name,
            ctr.sandbox) == ("docker", ID, "web", "nginx:1.25", None, False)


def test_docker_under_kubernetes(world):
    proc, roots, rt = world
    labels = {"io.kubernetes.container.name": "nginx",
              "io.kubernetes.docker.type": "container",
              "io.kubernetes.pod.name": "web-0",
              "io.kubernetes.pod.namespace": "shop",
              "io.kubernetes.pod.uid": POD_UID}
    write(os.path.join(roots["docker"], ID, "config.v2.json"), {
        "Name": "/k8s_nginx_web-0_shop_%s_0" % POD_UID,
        "Config": {"Image": "nginx@sha256:" + SANDBOX, "Labels": labels}})
    ctr = describe(world, 1, "/kubepods/burstable/pod%s/%s" % (POD_UID, ID))
    assert (ctr.runtime, ctr.name, ctr.pod_namespace, ctr.pod_name,
            ctr.sandbox) == ("docker", "nginx", "shop", "web-0", False)


def cri_annotations(kind):
    cri = "io.kubernetes.cri."
    ann = {cri + "container-type": kind, cri + "sandbox-id": SANDBOX,
           cri + "sandbox-name": "web-0", cri + "sandbox-namespace": "shop",
           cri + "sandbox-uid": POD_UID}
    if kind == "container":
        ann.update({cri + "container-name": "nginx",
                    cri + "image-name": "docker.io/library/nginx:1.25"})
    return ann


def test_containerd_cri(world):
    proc, roots, rt = world
    write(os.path.join(roots["containerd"], "k8s.io", ID, "config.json"),
          {"ociVersion": "1.1.0", "annotations": cri_annotations(
              "container")})
    ctr = describe(world, 1, CGROUPS[8][0])
    assert (ctr.runtime, ctr.name, ctr.image, ctr.pod_namespace,
            ctr.pod_name, ctr.sandbox) == (
        "containerd", "nginx", "docker.io/library/nginx:1.25", "shop",
        "web-0", False)
    # the same ID under the cgroupfs driver: told apart by its state
    assert describe(world, 1, "/kubepods/burstable/pod%s/%s"
                    % (POD_UID, ID)) == ctr


def test_containerd_sandbox_and_nerdctl(world):
    proc, roots, rt = world
    write(os.path.join(roots["containerd"], "k8s.io", ID, "config.json"),
          {"annotations": cri_annotations("sandbox")})
    box = describe(world, 1, CGROUPS[8][0])
    assert box.sandbox and box.name is None and box.pod_name == "web-0"
    write(os.path.join(roots["containerd"], "default", SANDBOX,
                       "config.json"),
          {"annotations": {"nerdctl/name": "cache"}})
    ctr = describe(world, 1, "/default/" + SANDBOX)
    assert (ctr.runtime, ctr.name, ctr.pod_name) == ("containerd", "cache",
                                                     None)


def crio_bundle(root, cid=ID, kind="container"):
    labels = {"io.kubernetes.container.name": "nginx",
              "io.kubernetes.pod.name": "web-0",
              "io.kubernetes.pod.namespace": "shop",
              "io.kubernetes.pod.uid": POD_UID}
    bundle = os.path.join(root, cid, "userdata")
    write(os.path.join(bundle, "config.json"), {"annotations": {
        "io.kubernetes.cri-o.ContainerType": kind,
        "io.kubernetes.cri-o.ContainerName":
            "k8s_nginx_web-0_shop_%s_0" % POD_UID,
        "io.kubernetes.cri-o.ImageName": "docker.io/library/nginx:1.25",
        "io.kubernetes.cri-o.SandboxID": SANDBOX,
        "io.kubernetes.cri-o.Labels": json.dumps(labels)}})
    return bundle


def test_crio_through_conmon_and_in_its_place(world):
    proc, roots, rt = world
    bundle = crio_bundle(str(proc.parent / "elsewhere"))
    fakeproc.add(proc, 300, "conmon", cmdline=[
        "/usr/bin/conmon", "-b", bundle, "-c", ID, "--exit-dir",
        "/var/run/crio/exits", "--log-level", "info", "-n",
        "k8s_nginx_web-0_shop_%s_0" % POD_UID, "--runtime-arg",
        "--root=/run/runc", "-s", "-u", ID, "-r", "/usr/bin/runc", "-y"])
    fakeproc.add(proc, 301, "nginx", ppid=300)
    fakeproc.add(proc, 302, "nginx", ppid=301)       # a worker
    path = CGROUPS[9][0]
    ctr = describe(world, 302, path)
    assert (ctr.runtime, ctr.name, ctr.image, ctr.pod_namespace,
            ctr.pod_name, ctr.sandbox) == (
        "cri-o", "nginx", "docker.io/library/nginx:1.25", "shop", "web-0",
        False)
    crio_bundle(roots["cri-o"], SANDBOX, "sandbox")
    box = describe(world, 999, path.replace(ID, SANDBOX))   # no conmon
    assert box.sandbox and box.pod_name == "web-0"


def podman_world(world, pod=None, uid=None):
    proc, roots, rt = world
    graph = proc.parent / "graph"
    bundle = str(graph / "overlay-containers" / ID / "userdata")
    ann = {"io.container.manager": "libpod"}
    if pod:
        ann["io.kubernetes.cri-o.SandboxID"] = SANDBOX
    write(os.path.join(bundle, "config.json"), {"annotations": ann})
    write(str(graph / "overlay-containers" / "containers.json"), [
        {"id": SANDBOX, "names": ["other"], "metadata": "{}"},
        {"id": ID, "names": ["web"], "metadata": json.dumps(
            {"image-name": "localhost/web:1", "name": "web"})}])
    fakeproc.add(proc, 500, "conmon", uid=uid, cmdline=[
        "/usr/bin/conmon", "--api-version", "1", "-c", ID, "-u", ID, "-r",
        "/usr/bin/runc", "-b", bundle, "-n", "web", "--exit-dir",
        "/run/libpod/exits", "--exit-command", "/usr/bin/podman",
        "--exit-command-arg", "--root", "--exit-command-arg", str(graph),
        "--exit-command-arg", "--runroot", "--exit-command-arg", "/run/x",
        "--exit-command-arg", "container", "--exit-command-arg", "cleanup",
        "--exit-command-arg", ID])
    fakeproc.add(proc, 501, "nginx", ppid=500)
    return bundle


def test_podman(world):
    podman_world(world)
    proc, roots, rt = world
    ctr = describe(world, 501, CGROUPS[0][0])
    assert (ctr.runtime, ctr.id, ctr.name, ctr.image, ctr.pod_name,
            ctr.sandbox) == ("podman", ID, "web", "localhost/web:1", None,
                             False)
    assert rt.calls == []


def test_podman_pod_asks_podman_as_conmon_would(world):
    podman_world(world, pod=True, uid=0)
    proc, roots, rt = world
    ctr = describe(world, 501, CGROUPS[1][0])
    if os.getuid() == 0:
        assert ctr.pod_name == "shop-pod" and not ctr.sandbox
        assert rt.calls == [["/usr/bin/podman", "--root",
                             str(proc.parent / "graph"), "--runroot",
                             "/run/x", "pod", "inspect", "--format",
                             "{{.Name}}", SANDBOX]]
    else:       # the files are the user's, not those of root's conmon
        assert ctr.name == "web" and ctr.image is None


def test_conmon_options_keep_their_values():
    opts = conmon_options(["conmon", "-c", "x", "--runtime-arg", "--log",
                           "-n", "web", "--exit-command-arg", "-n",
                           "--exit-command-arg", "y", "-b"])
    assert opts == {"-c": "x", "-n": "web", "exit-args": ["-n", "y"]}


# -- what a user may plant --------------------------------------------------

@pytest.mark.parametrize("content", [
    "", "not json", "[1, 2]", '{"Name": 7, "Config": []}', "{" * 100000,
    '{"Name": "/x", "Config": {"Image": ["a"], "Labels": "no"}}'])
def test_malformed_state_gives_runtime_and_id_only(world, content):
    proc, roots, rt = world
    write(os.path.join(roots["docker"], ID, "config.v2.json"), content)
    ctr = describe(world, 1, "/docker/" + ID)
    assert ctr.runtime == "docker" and ctr.id == ID
    assert ctr.image is None and ctr.pod_name is None


def test_state_file_too_big_is_not_read(world):
    proc, roots, rt = world
    write(os.path.join(roots["docker"], ID, "config.v2.json"),
          '{"Name": "/big", "x": "%s"}' % ("a" * (9 << 20)))
    assert describe(world, 1, "/docker/" + ID).name is None


def test_symlinked_state_file_is_not_followed(world, tmp_path):
    proc, roots, rt = world
    real = write(str(tmp_path / "secret.json"), {"Name": "/secret"})
    os.makedirs(os.path.join(roots["docker"], ID))
    os.symlink(real, os.path.join(roots["docker"], ID, "config.v2.json"))
    assert describe(world, 1, "/docker/" + ID).name is None


@pytest.mark.root
def test_a_users_conmon_cannot_point_at_roots_files(world):
    """A process of user nobody named conmon, whose -b names a bundle of
    root's: rsttrace reads none of it, and runs no podman."""
    proc, roots, rt = world
    bundle = podman_world(world, pod=True, uid=65534)
    assert os.stat(os.path.join(bundle, "config.json")).st_uid == 0
    ctr = describe(world, 501, CGROUPS[1][0])
    assert (ctr.name, ctr.image, ctr.pod_name) == ("web", None, None)
    assert rt.calls == []


# -- the index: processes by namespace ----------------------------------------

def test_index_by_netns_and_pid(world):
    proc, roots, rt = world
    fakeproc.add(proc, 1, "init", netns=HOST_NS)
    fakeproc.add(proc, 10, "sshd", netns=HOST_NS)
    crio_bundle(roots["cri-o"], SANDBOX, "sandbox")
    crio_bundle(roots["cri-o"], ID, "container")
    path = CGROUPS[10][0]
    fakeproc.add(proc, 20, "pause", netns=CTR_NS,
                 cgroup=path.replace(ID, SANDBOX))
    fakeproc.add(proc, 21, "nginx", netns=CTR_NS, cgroup=path)
    fakeproc.add(proc, 30, "lonely", netns=CTR_NS + 1)
    index = ContainerIndex(Proc(str(proc)), rt)
    ctr, pod = index.of_netns(CTR_NS)
    assert (ctr.id, ctr.name, pod) == (ID, "nginx", Pod("shop", "web-0"))
    assert index.of_netns(CTR_NS + 1) == (None, None)
    assert index.of_netns(HOST_NS) == (None, None)
    assert index.of_pid(21).id == ID and index.of_pid(10) is None
    assert sorted(c.id for c, ns in index.containers()) == [ID, SANDBOX]
