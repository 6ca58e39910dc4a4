"""Tracer.plan's decisions on kernels this machine is not: no BTF and no
matching headers, no hooks at all. (The kernel facts are stubbed; the real
kernel is exercised by tests/integration.)"""

import pytest

from rsttrace.trace import hooks

from rsttrace.kernel import features, headers, modules

from rsttrace.trace import module_watch, tracer
from rsttrace.errors import RsttraceError


class OwnHeaders(headers.Tree):
    """The running kernel's own header tree."""
    def matches(self, release):
        return True


OWN = OwnHeaders("/lib/modules/x/build", "/lib/modules/x/build", "modules")


@pytest.fixture()
def plain(monkeypatch):
    monkeypatch.setattr(tracer, "require_root", lambda: None)
    monkeypatch.setattr(tracer, "import_bcc", lambda: None)
    monkeypatch.setattr(features, "tracefs", lambda mount=False: None)
    return monkeypatch


@pytest.mark.parametrize("btf,expected", [
    (None, "no BTF"),                       # offsets need own headers
    (object(), "no kernel headers for bcc"),  # bcc's includes need a tree
])
def test_no_headers(plain, btf, expected):
    """No header tree anywhere (nor kheaders): one line that names the
    package to install."""
    plain.setattr(features, "load_btf", lambda: btf)
    plain.setattr(headers, "find", lambda: None)
    plain.setattr(headers, "kheaders_possible", lambda: False)
    with pytest.raises(RsttraceError) as e:
        tracer.Tracer().plan()
    msg = str(e.value)
    assert expected in msg and "linux-headers-" in msg
    assert "\n" not in msg


def test_no_hook_exists(plain):
    plain.setattr(features, "load_btf", lambda: None)
    plain.setattr(headers, "find", lambda: OWN)
    plain.setattr(hooks, "auto_mode", lambda: "tracepoint")
    plain.setattr(features, "tracepoint_exists", lambda c, n: False)
    with pytest.raises(RsttraceError) as e:
        tracer.Tracer().plan()
    assert "none of rsttrace's hooks exist" in str(e.value)


def test_without_btf_offsets_come_from_headers(plain):
    plain.setattr(features, "load_btf", lambda: None)
    plain.setattr(headers, "find", lambda: OWN)
    plain.setattr(hooks, "auto_mode", lambda: "tracepoint")
    plain.setattr(features, "tracepoint_exists", lambda c, n: True)
    plain.setattr(features, "ringbuf_supported", lambda: False)
    plain.setattr(features, "version", lambda rel=None: (6, 1, 0))
    t = tracer.Tracer().plan()
    flags = t.cflags()
    assert "-DOFFSETS_FROM_HEADERS" in flags
    assert "-DOFF_SKC_FAMILY=offsetof(struct sock_common, skc_family)" in flags
    assert "-DUSE_RINGBUF" not in flags
    # 6.1: tcp_send_reset has no reason argument
    assert "-DTP_TCP_SEND_RESET_REASON=-1" in flags
    assert "-DTP_TCP_SEND_RESET_SKB=1" in flags


def test_forced_mode_the_kernel_lacks(plain):
    plain.setattr(features, "load_btf", lambda: object())
    plain.setattr(features, "kprobes_supported", lambda: False)
    with pytest.raises(RsttraceError) as e:
        tracer.Tracer(mode="kprobe").plan()
    assert "no kprobes" in str(e.value) and "--mode tracepoint" in str(e.value)


@pytest.mark.parametrize("owners,summary_only,missing,want", [
    (True, False, False, True), (False, False, False, False),
    (True, True, False, False), (True, False, True, False)])
def test_owner_probe_when_asked_for_and_there(plain, owners, summary_only,
                                             missing, want):
    """The owner probe (sock:inet_sock_set_state) is built unless
    --no-owner or --summary-only says otherwise or the kernel lacks it
    (then with one warning)."""
    plain.setattr(features, "load_btf", lambda: None)
    plain.setattr(headers, "find", lambda: OWN)
    plain.setattr(hooks, "auto_mode", lambda: "tracepoint")
    plain.setattr(features, "tracepoint_exists",
                  lambda c, n: not (missing and c == "sock"))
    plain.setattr(features, "ringbuf_supported", lambda: True)
    warnings = []
    t = tracer.Tracer(owners=owners, summary_only=summary_only,
                      warn=warnings.append).plan()
    assert ("-DOWNERS" in t.cflags()) == want
    assert len(warnings) == (1 if missing and owners and not summary_only
                             else 0)


def test_hooks_come_and_go_with_their_modules(monkeypatch):
    """What trace says as modules load and unload, and when the names of
    kernel symbols must be looked up again."""
    t = tracer.Tracer()
    said = []
    t.warn = said.append
    t.placements = [
        hooks.Placement(hooks.by_key("NF_SEND_RESET"), "nf_send_reset",
                        module="nf_reject_ipv4", loaded=False),
        hooks.Placement(hooks.by_key("TCP_RESET"), "tcp_reset"),
        hooks.Placement(hooks.by_key("NF_SEND_RESET6"), skipped="inlined")]
    now = [{"x_tables": "0xa"}]
    monkeypatch.setattr(modules, "instances",
                        lambda: frozenset(now[0].items()))
    forgotten = []
    monkeypatch.setattr(module_watch, "forget_symbols",
                        lambda: forgotten.append(1))
    assert not t.check_modules()            # the first look
    assert not t.refresh_symbols() and said == [] and forgotten == []
    now[0] = {"x_tables": "0xa", "nf_reject_ipv4": "0xb",
              "nf_reject_ipv6": "0xc"}
    assert t.check_modules()
    assert said == ["hook nf_send_reset attached late: module "
                    "nf_reject_ipv4 loaded"]
    assert forgotten == [1]
    assert t.refresh_symbols() and not t.refresh_symbols()
    now[0] = {"nf_reject_ipv4": "0xb", "nf_reject_ipv6": "0xc"}
    assert t.check_modules() and len(said) == 1     # none of its hooks
    # unloaded and loaded again between two looks: elsewhere now
    now[0] = {"nf_reject_ipv4": "0xd", "nf_reject_ipv6": "0xc"}
    assert t.check_modules() and len(said) == 1 and len(forgotten) == 3
    assert t.refresh_symbols() and not t.refresh_symbols()
    now[0] = {}
    assert t.check_modules()
    assert said[1:] == ["hook nf_send_reset idle: module nf_reject_ipv4 "
                        "unloaded (hooked again when it loads)"]
    assert not t.check_modules() and len(said) == 2 and len(forgotten) == 4
    assert t.refresh_symbols(force=True) and len(forgotten) == 5
