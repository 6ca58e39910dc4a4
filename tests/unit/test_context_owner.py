"""The owner of an event's socket, the namespace's name, the container
filter and the enricher (rsttrace.context), on fake /proc trees and raw
events."""

import os
import types

import pytest

import fakeproc
from rsttrace import abi
from rsttrace.context.containers import ContainerIndex
from rsttrace.context.enrich import Enricher
from rsttrace.context.lazy import Rescanned
from rsttrace.context.netns import NetnsNames
from rsttrace.context.owner import Owners, fd_index
from rsttrace.context.procfs import Proc, read_file
from rsttrace.context.runtimes import Container
from rsttrace.context.select import Selection
from rsttrace.trace.decode import WHO_FIELDS
from test_event import raw

HOST_NS = 4026531840


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def shape(state="ESTABLISHED", context="softirq"):
    """What Owners reads of an event's Shape (rsttrace.trace.decode)."""
    return types.SimpleNamespace(state=state, context=context)


def enriched(enricher, ev, **kw):
    """The who-fields the enricher gives a raw event (of shape(**kw))."""
    return dict(zip(WHO_FIELDS, enricher.who(shape(**kw), ev)))


@pytest.fixture
def proc(tmp_path):
    root = tmp_path / "proc"
    root.mkdir()
    fakeproc.add(root, 1, "init", netns=HOST_NS)
    fakeproc.add(root, 40, "nginx", sockets=(555, 556))
    fakeproc.add(root, 41, "nginx", sockets=(556,))
    return root


def test_owner_sources_in_order(proc):
    owners = Owners(fd_index(Proc(str(proc))))
    recorded = raw(flags=abi.EV_SOCK | abi.EV_OWNER, owner_pid=99,
                   owner_comm=b"server".ljust(16, b"\0"), sock_ino=555)
    assert owners.owner(shape(), recorded) == (99, "server", "socket")
    assert owners.owner(shape(state="TIME_WAIT"), recorded) == \
        (99, "server", "socket")
    accepted = raw(flags=abi.EV_SOCK, sock_ino=555)
    assert owners.owner(shape(context="process"), accepted) == \
        (1234, "curl", "task")              # the event's task
    assert owners.owner(shape(), accepted) == (40, "nginx", "fd")
    assert owners.owner(shape(), raw(flags=abi.EV_SOCK, sock_ino=556)) == \
        (40, "nginx", "fd")             # the first of its holders
    assert owners.owner(shape(state=None), raw(flags=0)) == \
        (None, None, "no-socket")
    assert owners.owner(shape(state="TIME_WAIT"),
                        raw(flags=abi.EV_SOCK)) == (None, None, "time-wait")
    assert owners.owner(shape(), raw(flags=abi.EV_SOCK, sock_ino=777)) == \
        (None, None, "unknown")
    assert owners.owner(shape(), raw(flags=abi.EV_SOCK)) == \
        (None, None, "unknown")


def test_a_storm_of_unknown_inodes_scans_once_a_second(proc):
    clock = Clock()
    fds = fd_index(Proc(str(proc)), clock=clock)
    owners = Owners(fds)
    for ino in range(1000, 6000):                    # 5000 events, 0.5 s
        clock.now += 0.0001
        assert owners.owner(shape(), raw(flags=abi.EV_SOCK,
                                          sock_ino=ino))[2] == "unknown"
    assert fds.scans == 1
    clock.now += 1.0
    fakeproc.add(proc, 50, "late", sockets=(4242,))
    assert owners.owner(shape(), raw(flags=abi.EV_SOCK, sock_ino=4242)) \
        == (50, "late", "fd")
    assert fds.scans == 2


def test_rescanned_ages_out():
    clock, tables = Clock(), [{"a": 1}, {"a": 2}, {"a": 3}]
    r = Rescanned(lambda: tables.pop(0), min_age=1, max_age=10, clock=clock)
    assert r.get("a") == 1
    clock.now += 9
    assert r.get("a") == 1 and r.get("b") is None and r.scans == 2
    clock.now += 10
    assert r.get("a") == 3 and r.scans == 3


def test_netns_names(tmp_path, proc):
    named = tmp_path / "netns"
    named.mkdir()
    (named / "blue").write_text("")
    (named / "green").write_text("")
    names = NetnsNames(Proc(str(proc)), str(named), clock=Clock())
    assert names.name(HOST_NS) == "host"
    assert names.name(os.stat(named / "blue").st_ino) == "blue"
    assert names.name(12345) is None
    assert names.name(None) is None


def test_proc_readers_tolerate_what_vanished(tmp_path, proc):
    p = Proc(str(proc))
    assert (p.comm(999), p.ppid(999), p.cgroup(999), p.netns(999),
            p.cmdline(999), p.socket_inodes(999), p.uid(999)) == \
        (None, None, None, None, [], [], None)
    assert sorted(p.pids()) == [1, 40, 41]
    assert Proc(str(tmp_path / "none")).pids() == []
    os.symlink("/etc/hostname", tmp_path / "link")
    assert read_file(str(tmp_path / "link")) is None
    assert read_file(str(tmp_path)) is None          # not a regular file


def test_cgroup_v1_lines(tmp_path):
    root = tmp_path / "proc"
    fakeproc.add(root, 5)
    (root / "5" / "cgroup").write_text(
        "12:pids:/docker/abc\n11:cpu,cpuacct:/docker/abc\n"
        "1:name=systemd:/system.slice/docker.service\n0::/\n")
    assert Proc(str(root)).cgroup(5) == "/docker/abc"


# -- --container / --pod ------------------------------------------------------

ID = "ab" * 32


class FakeIndex:
    def __init__(self):
        self.listing = []

    def containers(self):
        return list(self.listing)


class FakeTracer:
    def __init__(self):
        self.watched = set()

    def watch_netns(self, inode, on=True):
        (self.watched.add if on else self.watched.discard)(inode)


def ctr(name, cid=ID, pod=None, ns=None):
    return Container("podman", cid, name, None, ns, pod, False)


def test_selection_follows_containers_as_they_come_and_go():
    index, tracer = FakeIndex(), FakeTracer()
    sel = Selection(index, ["web", "cdef12"], ["shop/web-0"], fixed={7})
    assert sel.apply(tracer) == ["web", "cdef12", "shop/web-0"]
    assert tracer.watched == set()              # --netns 7 is in the map
    index.listing = [(ctr("web"), 100), (ctr("x", "cdef12" + "0" * 58), 101),
                     (ctr("y", "1" * 64, "web-0", "shop"), 102),
                     (ctr("z", "2" * 64, "web-0", "other"), 103)]
    assert sel.apply(tracer) == []
    assert tracer.watched == {100, 101, 102}
    index.listing = [(ctr("web"), 200)]         # restarted, new namespace
    assert sel.apply(tracer) == ["cdef12", "shop/web-0"]
    assert tracer.watched == {200}
    assert sel.current == {7, 200}
    assert sel.apply(tracer) == []              # warned once


def test_selection_matching():
    index, tracer = FakeIndex(), FakeTracer()
    index.listing = [(ctr("web"), 1), (ctr(None, "c" * 64, "api"), 2)]
    assert Selection(index, ["abab"]).resolve()[0] == {1}      # id prefix
    assert Selection(index, ["aba"]).resolve() == (set(), ["aba"])
    assert Selection(index, [], ["api"]).resolve()[0] == {2}   # any ns
    assert Selection(index, [], ["x/api"]).resolve()[0] == set()
    assert not Selection(index)


# -- the enricher -------------------------------------------------------------

def test_enricher_takes_the_owners_container_else_the_namespaces(tmp_path,
                                                                 proc):
    p = Proc(str(proc))

    class Index(ContainerIndex):
        def of_pid(self, pid):
            return ctr("web", pod="web-0", ns="shop") if pid == 40 else None

        def of_netns(self, inode):
            return (ctr("box"), None) if inode == 9 else (None, None)
    enricher = Enricher(p, Index(p), NetnsNames(p, str(tmp_path)))
    rec = enriched(enricher, raw(
        netns=9, flags=abi.EV_SOCK | abi.EV_OWNER, owner_pid=40,
        owner_comm=b"nginx"))
    assert (rec["owner_pid"], rec["container"]["name"], rec["pod"]) == \
        (40, "web", {"namespace": "shop", "name": "web-0"})
    rec2 = enriched(enricher, raw(netns=9, flags=0))
    assert (rec2["owner_source"], rec2["container"]["name"], rec2["pod"],
            rec2["netns_name"]) == ("no-socket", "box", None, None)
    rec3 = enriched(enricher, raw(flags=abi.EV_SOCK | abi.EV_OWNER,
                                         owner_pid=40))
    assert rec3["container"] is rec["container"]        # shared dicts
    assert rec3["netns_name"] == "host"
