"""Filter parsing and the -D flags it turns into (rsttrace.filters)."""

import ipaddress
import os

import pytest

from rsttrace.trace import filters
from rsttrace.errors import UsageError
from rsttrace.trace.filters import (Filters, build, display_addr, netns_inode,
                              parse_comm, parse_hosts, parse_netns,
                              parse_pid, parse_ports)

HEADER = os.path.join(os.path.dirname(__file__), "..", "..", "bpf",
                      "rsttrace.h")

V6 = ipaddress.IPv6Address


def usage_error(fn, *args, **kw):
    with pytest.raises(UsageError) as e:
        fn(*args, **kw)
    assert e.value.exit_code == 2
    assert "\n" not in str(e.value)
    return e.value


# -- ports -----------------------------------------------------------------

def test_ports_lists_and_commas():
    assert parse_ports(["80"]) == {80}
    assert parse_ports(["80,443", "8080"]) == {80, 443, 8080}
    assert parse_ports(["80, 443,,"]) == {80, 443}
    assert parse_ports([22, "22"]) == {22}
    assert parse_ports(["1", "65535"]) == {1, 65535}
    assert parse_ports([]) == set()


@pytest.mark.parametrize("bad", ["0", "65536", "x", "-1", "80x", "1e3",
                                 "80,99999"])
def test_bad_ports(bad):
    err = usage_error(parse_ports, [bad])
    assert "--port" in str(err)


def test_bad_port_unicode_digit():
    """'²' passes str.isdigit() but not int(): it must still be a usage
    error (exit 2), not a ValueError traceback."""
    usage_error(parse_ports, ["\u00b2"])


# -- hosts ------------------------------------------------------------------

def test_hosts_v4_is_mapped():
    assert parse_hosts(["10.0.0.1"]) == {V6("::ffff:10.0.0.1")}
    (addr,) = parse_hosts(["192.168.1.2"])
    assert isinstance(addr, V6)
    assert addr.packed == b"\0" * 10 + b"\xff\xff" + bytes([192, 168, 1, 2])


def test_hosts_v6_and_brackets():
    assert parse_hosts(["2001:db8::1"]) == {V6("2001:db8::1")}
    assert parse_hosts(["[2001:db8::1]"]) == {V6("2001:db8::1")}
    assert parse_hosts(["::1,10.0.0.1", " 10.0.0.2 "]) == {
        V6("::1"), V6("::ffff:10.0.0.1"), V6("::ffff:10.0.0.2")}
    # a v4 address given mapped is the same host
    assert parse_hosts(["::ffff:10.0.0.1", "10.0.0.1"]) == {
        V6("::ffff:10.0.0.1")}


@pytest.mark.parametrize("bad", ["example.com", "10.0.0.256", "1.2.3",
                                 "::g", "10.0.0.1/24"])
def test_bad_hosts(bad):
    err = usage_error(parse_hosts, [bad])
    assert "--host" in str(err) and bad in str(err)


def test_display_addr():
    assert str(display_addr(V6("::ffff:10.0.0.1"))) == "10.0.0.1"
    assert str(display_addr(V6("2001:db8::1"))) == "2001:db8::1"


# -- pid, comm ----------------------------------------------------------------

def test_pid():
    assert parse_pid(None) is None
    assert parse_pid(os.getpid()) == os.getpid()
    assert parse_pid(1) == 1


def test_pid_nonexistent():
    # above the largest pid_max the kernel allows (2^22)
    err = usage_error(parse_pid, 4194305)
    assert "4194305" in str(err)


@pytest.mark.parametrize("bad", [0, -5])
def test_pid_not_positive(bad):
    usage_error(parse_pid, bad)


def test_comm():
    assert parse_comm(None) is None
    assert parse_comm("curl") == "curl"
    assert parse_comm("a" * 15) == "a" * 15


def test_comm_too_long():
    usage_error(parse_comm, "a" * 16)
    # 8 two-byte characters: 16 bytes, too long although 8 characters
    usage_error(parse_comm, "\u00e9" * 8)
    usage_error(parse_comm, "")


# -- netns ---------------------------------------------------------------------

def test_netns_number():
    assert netns_inode("4026531840") == 4026531840
    assert netns_inode(4026531993) == 4026531993


def test_netns_path():
    assert netns_inode("/proc/self/ns/net") == os.stat(
        "/proc/self/ns/net").st_ino


def test_netns_name(tmp_path, monkeypatch):
    monkeypatch.setattr(filters, "NETNS_DIR", str(tmp_path))
    (tmp_path / "blue").write_text("")
    assert netns_inode("blue") == os.stat(tmp_path / "blue").st_ino
    err = usage_error(netns_inode, "red")
    assert "--netns red" in str(err)


def test_netns_missing_path():
    usage_error(netns_inode, "/nonexistent/ns/net")


def test_netns_unicode_digit(tmp_path, monkeypatch):
    """Like --port: '²' passes str.isdigit() but is no inode number; it
    must be a usage error, not a ValueError traceback."""
    monkeypatch.setattr(filters, "NETNS_DIR", str(tmp_path))
    usage_error(netns_inode, "\u00b2")


def test_parse_netns_lists():
    assert parse_netns(["1,2", "3"]) == {1, 2, 3}
    assert parse_netns([]) == set()


# -- build ---------------------------------------------------------------------

def test_build_both_families():
    err = usage_error(build, ipv4=True, ipv6=True)
    assert "-4" in str(err) and "-6" in str(err)


def test_build_family():
    assert build(ipv4=True).family == 4
    assert build(ipv6=True).family == 6
    assert build().family is None


def test_build_everything():
    f = build(ports=["80,443"], hosts=["10.0.0.1"], pid=os.getpid(),
              comm="curl", netns=["/proc/self/ns/net"], ipv6=True)
    assert f.ports == {80, 443}
    assert f.hosts == {V6("::ffff:10.0.0.1")}
    assert f.pid == os.getpid()
    assert f.comm == "curl"
    assert f.netns == {os.stat("/proc/self/ns/net").st_ino}
    assert f.family == 6


def test_build_too_many_values():
    ports = [str(p) for p in range(1, filters.FILTER_MAX + 2)]
    err = usage_error(build, ports=ports)
    assert "--port" in str(err) and str(filters.FILTER_MAX) in str(err)
    assert len(build(ports=ports[:filters.FILTER_MAX]).ports) == \
        filters.FILTER_MAX


# -- cflags, describe ---------------------------------------------------------

def test_no_filters_no_flags():
    assert Filters().cflags() == []
    assert Filters().describe() == "none"


def test_cflags():
    f = Filters(ports={80}, hosts={V6("::1")}, pid=42, comm="curl",
                netns={4026531840}, family=4)
    assert f.cflags() == ["-DFILTER_FAMILY=4", "-DFILTER_PID=42",
                          "-DFILTER_PORTS", "-DFILTER_HOSTS",
                          "-DFILTER_COMM", "-DFILTER_NETNS"]


def test_cflags_each_alone():
    assert Filters(family=6).cflags() == ["-DFILTER_FAMILY=6"]
    assert Filters(pid=1).cflags() == ["-DFILTER_PID=1"]
    assert Filters(ports={1}).cflags() == ["-DFILTER_PORTS"]
    assert Filters(hosts={V6("::1")}).cflags() == ["-DFILTER_HOSTS"]
    assert Filters(comm="x").cflags() == ["-DFILTER_COMM"]
    assert Filters(netns={5}).cflags() == ["-DFILTER_NETNS"]
    # the netns set filled later still needs the filter compiled in
    assert Filters(netns_dynamic=True).cflags() == ["-DFILTER_NETNS"]


def test_describe():
    f = Filters(ports={443, 80}, hosts={V6("::ffff:10.0.0.1"), V6("::1")},
                pid=7, comm="nc", netns={9}, family=6)
    assert f.describe() == ("port 80,443, host ::1,10.0.0.1, pid 7, "
                            "comm nc, netns 9, IPv6")


# -- the exact line each bad value gets (what is wrong: how to fix it) --------

@pytest.mark.parametrize("fn, args, line", [
    (parse_ports, (["99999"],), "--port 99999 is not a TCP port: give a "
     "number from 1 to 65535, or a comma-separated list"),
    (parse_hosts, (["10.0.0.256"],), "--host 10.0.0.256 is not an IP "
     "address: give an IPv4 or IPv6 address such as 10.0.0.1 or ::1"),
    (parse_pid, (0,), "--pid 0 is not a process id: give the pid of a "
     "running process"),
    (parse_pid, (4194305,), "no process with pid 4194305: check the pid "
     "with `ps -p 4194305`"),
    (parse_comm, ("a" * 16,), "--comm 'aaaaaaaaaaaaaaaa' is not a process "
     "name: the kernel keeps at most 15 bytes of a name (see `ps -o comm`)"),
    (parse_comm, ("",), "--comm '' is not a process name: the kernel keeps "
     "at most 15 bytes of a name (see `ps -o comm`)"),
    (netns_inode, ("/nonexistent/ns",), "--netns /nonexistent/ns is not a "
     "network namespace: give an inode number (`lsns -t net`), a name from "
     "`ip netns list`, or a path like /proc/PID/ns/net"),
    (build, ((), (), None, None, (), True, True), "-4 and -6 exclude each "
     "other: give one of them, or neither for both"),
])
def test_error_lines(fn, args, line):
    assert str(usage_error(fn, *args)) == line


def test_too_many_values_line():
    hosts = ["10.0.%d.%d" % (i // 250, i % 250 + 1)
             for i in range(filters.FILTER_MAX + 1)]
    err = usage_error(build, hosts=hosts)
    assert str(err) == ("--host has %d values, more than the %d rsttrace "
                        "can filter on in the kernel: trace without it and "
                        "filter the JSON output"
                        % (filters.FILTER_MAX + 1, filters.FILTER_MAX))
    netns = [str(i) for i in range(1, filters.FILTER_MAX + 2)]
    assert str(usage_error(build, netns=netns)).startswith(
        "--netns has %d values" % (filters.FILTER_MAX + 1))


def test_pid_zero_and_one():
    """0 is no process id (the idle task); 1 always exists."""
    usage_error(parse_pid, 0)
    assert parse_pid(1) == 1


def test_hosts_brackets_only_stripped():
    """Only the brackets of [v6] are stripped, no other character."""
    assert parse_hosts(["[::1]"]) == {V6("::1")}
    usage_error(parse_hosts, ["X::1"])
    usage_error(parse_hosts, ["::1X"])


def test_mapped_v4_spelling():
    (addr,) = parse_hosts(["10.1.2.3"])
    assert str(addr) == "::ffff:a01:203"
    assert addr.ipv4_mapped == ipaddress.IPv4Address("10.1.2.3")


def test_describe_lists():
    f = Filters(ports={1, 2}, netns={3, 4})
    assert f.describe() == "port 1,2, netns 3,4"


# -- fill_maps: what goes into the program's filter maps ------------------------

class Table(dict):
    """A BPF hash/array map as bcc presents it: Key and Leaf ctypes types,
    item assignment (the BPF program's side is tested in
    tests/integration/test_filters_kernel.py)."""

    def __init__(self, key, leaf):
        super().__init__()
        self.Key, self.Leaf = key, leaf

    def __setitem__(self, key, leaf):
        super().__setitem__(bytes(key), bytes(leaf))


def maps():
    import ctypes as ct

    class Addr16(ct.Structure):
        _fields_ = [("a", ct.c_ubyte * 16)]

    class Comm16(ct.Structure):
        _fields_ = [("c", ct.c_char * 16)]
    return {b"filter_ports": Table(ct.c_ushort, ct.c_ubyte),
            b"filter_hosts": Table(Addr16, ct.c_ubyte),
            b"filter_netns": Table(ct.c_uint, ct.c_ubyte),
            b"filter_comm": Table(ct.c_int, Comm16)}


def test_fill_maps_everything():
    import struct
    tables = maps()
    Filters(ports={80, 443}, hosts=parse_hosts(["10.0.0.1", "2001:db8::2"]),
            netns={4026531840}, comm="curl").fill_maps(tables)
    one = b"\x01"
    assert tables[b"filter_ports"] == {struct.pack("H", 80): one,
                                       struct.pack("H", 443): one}
    assert tables[b"filter_hosts"] == {
        V6("::ffff:10.0.0.1").packed: one, V6("2001:db8::2").packed: one}
    assert tables[b"filter_netns"] == {struct.pack("I", 4026531840): one}
    assert tables[b"filter_comm"] == {struct.pack("i", 0):
                                      b"curl" + b"\0" * 12}


def test_fill_maps_nothing():
    tables = maps()
    Filters().fill_maps(tables)
    assert all(t == {} for t in tables.values())
    # a dynamic netns filter is filled later, by the tracer
    Filters(netns_dynamic=True, pid=1, family=4).fill_maps(tables)
    assert all(t == {} for t in tables.values())


def test_fill_maps_each_alone():
    for filt, name in ((Filters(ports={1}), b"filter_ports"),
                       (Filters(hosts={V6("::1")}), b"filter_hosts"),
                       (Filters(netns={7}), b"filter_netns"),
                       (Filters(comm="x"), b"filter_comm")):
        tables = maps()
        filt.fill_maps(tables)
        assert [n for n, t in tables.items() if t] == [name]


def test_fill_maps_multibyte_comm():
    tables = maps()
    Filters(comm="\u00e9t\u00e9").fill_maps(tables)
    assert list(tables[b"filter_comm"].values()) == [
        "\u00e9t\u00e9".encode() + b"\0" * 11]


def test_netns_relative_path(tmp_path, monkeypatch):
    """A spec with a slash is a path as given (relative to the current
    directory), not a name under /var/run/netns."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(filters, "NETNS_DIR", str(tmp_path / "names"))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "ns").write_text("")
    assert netns_inode("d/ns") == os.stat(tmp_path / "d" / "ns").st_ino


def test_too_many_ports_line():
    ports = [str(p) for p in range(1, filters.FILTER_MAX + 2)]
    assert str(usage_error(build, ports=ports)).startswith(
        "--port has %d values, more than" % (filters.FILTER_MAX + 1))
