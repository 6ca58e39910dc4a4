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
