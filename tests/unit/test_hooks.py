"""Argument positions of the hooks: from BTF prototypes (matched by type)
or, without BTF, from the kernel version (rsttrace.hooks)."""

import pytest

from btfgen import Builder, nf_reject_module_btf
from rsttrace.trace import hooks
from rsttrace.kernel import features, modules
from rsttrace.errors import RsttraceError
from rsttrace.trace.hooks import (FUNCTION_HOOKS, TRACEPOINT_HOOKS, Placement,
                            place, positions_from_types)

BY_KEY = {h.key: h for h in hooks.ALL_HOOKS}


# -- positions_from_types -------------------------------------------------------

def test_positions_6_10():
    assert positions_from_types(
        ["struct sock *", "struct sk_buff *", "enum sk_rst_reason"]) == {
        "sk": 0, "skb": 1, "reason": 2}


def test_positions_pre_6_10():
    assert positions_from_types(["struct sock *", "struct sk_buff *"]) == {
        "sk": 0, "skb": 1, "reason": -1}


def test_positions_const():
    assert positions_from_types(
        ["const struct sock *", "const struct sk_buff *"]) == {
        "sk": 0, "skb": 1, "reason": -1}


def test_positions_active_reset():
    # void tcp_send_active_reset(struct sock *, gfp_t, enum sk_rst_reason)
    assert positions_from_types(
        ["struct sock *", "unsigned int", "enum sk_rst_reason"]) == {
        "sk": 0, "skb": -1, "reason": 2}


def test_positions_reordered_and_first_wins():
    # nf_send_reset(struct net *, struct sock *, struct sk_buff *, int)
    assert positions_from_types(
        ["struct net *", "struct sock *", "struct sk_buff *", "int"]) == {
        "sk": 1, "skb": 2, "reason": -1}
    assert positions_from_types(
        ["struct sk_buff *", "struct sock *", "struct sk_buff *"]) == {
        "sk": 1, "skb": 0, "reason": -1}


def test_positions_unrelated_types():
    assert positions_from_types(["struct sock", "struct sock **", "int",
                                 "struct request_sock *"]) == {
        "sk": -1, "skb": -1, "reason": -1}
    assert positions_from_types([]) == {"sk": -1, "skb": -1, "reason": -1}


# -- Placement.cflags -------------------------------------------------------------

def test_placement_cflags():
    p = Placement(BY_KEY["TCP_V4_SEND_RESET"], symbol="tcp_v4_send_reset",
                  positions={"sk": 0, "skb": 1, "reason": 2}, source="btf")
    assert p.cflags() == ["-DHOOK_TCP_V4_SEND_RESET=1",
                          "-DTCP_V4_SEND_RESET_SK=0",
                          "-DTCP_V4_SEND_RESET_SKB=1",
                          "-DTCP_V4_SEND_RESET_REASON=2"]


def test_placement_cflags_missing_roles_are_minus_one():
    p = Placement(BY_KEY["TP_TCP_RECEIVE_RESET"], symbol="tcp_receive_reset",
                  positions={"sk": 0})
    assert p.cflags() == ["-DHOOK_TP_TCP_RECEIVE_RESET=1",
                          "-DTP_TCP_RECEIVE_RESET_SK=0",
                          "-DTP_TCP_RECEIVE_RESET_SKB=-1",
                          "-DTP_TCP_RECEIVE_RESET_REASON=-1"]


def test_skipped_placement_has_no_flags():
    p = Placement(BY_KEY["TCP_RESET"], skipped="not here")
    assert p.cflags() == []


# -- version fallbacks ---------------------------------------------------------------

def fallback(key, ver):
    return BY_KEY[key].fallback(ver)


@pytest.mark.parametrize("key", ["TCP_V4_SEND_RESET", "TCP_V6_SEND_RESET",
                                 "TP_TCP_SEND_RESET"])
def test_send_reset_reason_from_6_10(key):
    assert fallback(key, (6, 9)) == {"sk": 0, "skb": 1, "reason": -1}
    assert fallback(key, (6, 10)) == {"sk": 0, "skb": 1, "reason": 2}
    assert fallback(key, (7, 0)) == {"sk": 0, "skb": 1, "reason": 2}
    assert fallback(key, (5, 15)) == {"sk": 0, "skb": 1, "reason": -1}


def test_active_reset_reason_from_6_10():
    assert fallback("TCP_SEND_ACTIVE_RESET", (6, 9)) == {"sk": 0,
                                                         "reason": -1}
    assert fallback("TCP_SEND_ACTIVE_RESET", (6, 10)) == {"sk": 0,
                                                          "reason": 2}


def test_tcp_reset_skb_from_5_11():
    assert fallback("TCP_RESET", (5, 10)) == {"sk": 0, "skb": -1}
    assert fallback("TCP_RESET", (5, 11)) == {"sk": 0, "skb": 1}
    assert fallback("TCP_RESET", (4, 19)) == {"sk": 0, "skb": -1}
    assert fallback("TCP_RESET", (6, 18)) == {"sk": 0, "skb": 1}


def test_other_fallbacks():
    assert fallback("TCP_SEND_CHALLENGE_ACK", (6, 18)) == {"sk": 0}
    assert fallback("TP_TCP_RECEIVE_RESET", (4, 19)) == {"sk": 0}
    assert hooks.PACKET_HOOK.fallback((5, 4)) == {"skb": 0}
    assert BY_KEY["NF_SEND_RESET"].fallback is None
    assert BY_KEY["NF_SEND_RESET6"].fallback is None


def test_hook_tables():
    assert hooks.hooks_for("tracepoint") is TRACEPOINT_HOOKS
    assert hooks.hooks_for("kprobe") is FUNCTION_HOOKS
    assert hooks.hooks_for("fentry") is FUNCTION_HOOKS
    # --packets: the packet hook in every mode, the drop hook in
    # tracepoint mode (kprobe/fentry see TIME_WAIT kills without it)
    assert hooks.hooks_for("tracepoint", packets=True) == \
        TRACEPOINT_HOOKS + [hooks.PACKET_HOOK, hooks.DROP_HOOK]
    for mode in ("kprobe", "fentry"):
        assert hooks.hooks_for(mode, packets=True) == \
            FUNCTION_HOOKS + [hooks.PACKET_HOOK]
    assert all(h.tracepoint for h in TRACEPOINT_HOOKS)
    assert not any(h.tracepoint for h in FUNCTION_HOOKS)
    ids = [h.hook_id for h in hooks.ALL_HOOKS]
    assert len(ids) == len(set(ids))
    assert len({h.key for h in hooks.ALL_HOOKS}) == len(ids)
    for h in hooks.ALL_HOOKS:
        if h.fallback is not None:
            # a hook that may lack a role on older kernels (h.without)
            # has it on newer ones
            pos = h.fallback((7, 0) if h.without else (6, 10))
            assert all(pos.get(r, -1) >= 0 for r in h.roles), h


# -- place() with a synthetic BTF and stubbed kernel facts ------------------------

def synthetic_btf(reason=True):
    b = Builder()
    sock = b.struct("sock", 8, [])
    skb = b.struct("sk_buff", 8, [])
    net = b.struct("net", 8, [])
    u32 = b.u32()
    csock_p = b.ptr(b.const(sock))
    sock_p = b.ptr(sock)
    skb_p = b.ptr(skb)
    cskb_p = b.ptr(b.const(skb))
    net_p = b.ptr(net)
    gfp = b.typedef("gfp_t", u32)
    reason_t = b.enum("sk_rst_reason", [("SK_RST_REASON_NOT_SPECIFIED", 0)])
    extra = [("reason", reason_t)] if reason else []
    b.func("tcp_v4_send_reset", b.func_proto(
        0, [("sk", csock_p), ("skb", skb_p)] + extra))
    b.func("tcp_send_active_reset", b.func_proto(
        0, [("sk", sock_p), ("priority", gfp)] + extra))
    b.func("tcp_reset", b.func_proto(0, [("sk", sock_p), ("skb", skb_p)]))
    b.func("nf_send_reset", b.func_proto(
        0, [("net", net_p), ("sk", sock_p), ("oldskb", skb_p),
            ("hook", b.int("int", 4, signed=True))]))
    # a prototype rsttrace cannot use: no socket where one is needed
    b.func("tcp_v6_send_reset", b.func_proto(0, [("skb", skb_p)]))
    tp = b.func_proto(0, [("__data", b.ptr(0)), ("", csock_p),
                          ("", cskb_p)] + ([("", reason_t)] if reason else []))
    b.typedef("btf_trace_tcp_send_reset", b.ptr(tp))
    tw_p = b.ptr(b.struct("inet_timewait_sock", 8, []))
    b.func("inet_twsk_deschedule_put", b.func_proto(0, [("tw", tw_p)]))
    # skb:kfree_skb: the dropping socket (rx_sk) came with 6.11; `reason`
    # here stands for a kernel that has it
    drop = b.enum("skb_drop_reason", [("SKB_DROP_REASON_NOT_SPECIFIED", 2)])
    tp = b.func_proto(0, [("__data", b.ptr(0)), ("", skb_p),
                          ("", b.ptr(0)), ("", drop)] +
                      ([("", sock_p)] if reason else []))
    b.typedef("btf_trace_kfree_skb", b.ptr(tp))
    return b.btf()


@pytest.fixture()
def kern(monkeypatch):
    """Every tracepoint exists; kallsyms has each function as itself."""
    syms = {}
    monkeypatch.setattr(features, "tracepoint_exists", lambda c, n: True)
    monkeypatch.setattr(features, "function_symbol",
                        lambda name: syms.get(name, name))
    monkeypatch.setattr(features, "symbol_module", lambda symbol: None)
    return syms


def test_place_function_from_btf(kern):
    p = place(BY_KEY["TCP_V4_SEND_RESET"], "kprobe", synthetic_btf(),
              version=(6, 1))
    assert p.source == "btf" and p.skipped is None
    assert p.positions == {"sk": 0, "skb": 1, "reason": 2}
    p = place(BY_KEY["TCP_SEND_ACTIVE_RESET"], "fentry", synthetic_btf())
    assert p.positions == {"sk": 0, "skb": -1, "reason": 2}


def test_place_btf_beats_version(kern):
    # a 6.12 kernel whose BTF has no reason argument: BTF is believed
    p = place(BY_KEY["TCP_V4_SEND_RESET"], "kprobe",
              synthetic_btf(reason=False), version=(6, 12))
    assert p.positions == {"sk": 0, "skb": 1, "reason": -1}


def test_place_reordered_prototype(kern):
    p = place(BY_KEY["NF_SEND_RESET"], "kprobe", synthetic_btf())
    assert p.positions == {"sk": 1, "skb": 2, "reason": -1}


def test_place_unknown_prototype(kern):
    with pytest.raises(RsttraceError) as e:
        place(BY_KEY["TCP_V6_SEND_RESET"], "kprobe", synthetic_btf())
    assert "tcp_v6_send_reset" in str(e.value)
    assert "struct sk_buff *" in str(e.value)


def test_place_tracepoint_from_btf(kern):
    p = place(BY_KEY["TP_TCP_SEND_RESET"], "tracepoint", synthetic_btf(),
              version=(5, 4))
    assert p.source == "btf" and p.symbol == "tcp_send_reset"
    assert p.positions == {"sk": 0, "skb": 1, "reason": 2}


def test_place_without_btf_uses_version(kern):
    p = place(BY_KEY["TP_TCP_SEND_RESET"], "tracepoint", None, version=(6, 1))
    assert p.source == "version"
    assert p.positions == {"sk": 0, "skb": 1, "reason": -1}
    p = place(BY_KEY["TCP_RESET"], "kprobe", None, version=(5, 4))
    assert p.positions == {"sk": 0, "skb": -1, "reason": -1}
    # BTF present but without this tracepoint's typedef
    p = place(BY_KEY["TP_TCP_RECEIVE_RESET"], "tracepoint", synthetic_btf(),
              version=(6, 18))
    assert p.source == "version"
    assert p.positions == {"sk": 0, "skb": -1, "reason": -1}


def test_place_missing_tracepoint(monkeypatch):
    monkeypatch.setattr(features, "tracepoint_exists", lambda c, n: False)
    p = place(BY_KEY["TP_TCP_SEND_RESET"], "tracepoint", None,
              version=(6, 1))
    assert p.skipped and "tcp:tcp_send_reset" in p.skipped
    assert p.cflags() == []


def test_place_missing_function(kern, monkeypatch):
    monkeypatch.setattr(features, "function_symbol", lambda name: None)
    p = place(BY_KEY["TCP_RESET"], "kprobe", None, version=(6, 1))
    assert p.skipped and "kallsyms" in p.skipped


def test_place_constprop_clone_keeps_only_sk(kern):
    kern["tcp_v4_send_reset"] = "tcp_v4_send_reset.constprop.0"
    p = place(BY_KEY["TCP_V4_SEND_RESET"], "kprobe", synthetic_btf())
    assert p.symbol == "tcp_v4_send_reset.constprop.0"
    assert p.positions == {"sk": 0, "skb": -1, "reason": -1}


def test_place_isra_clone_trusts_nothing(kern):
    kern["tcp_reset"] = "tcp_reset.isra.0"
    p = place(BY_KEY["TCP_RESET"], "kprobe", synthetic_btf())
    assert p.positions == {"sk": -1, "skb": -1, "reason": -1}


def test_place_fentry_needs_the_function_itself(kern):
    kern["tcp_reset"] = "tcp_reset.constprop.0"
    p = place(BY_KEY["TCP_RESET"], "fentry", synthetic_btf())
    assert p.skipped and "clone" in p.skipped


def test_place_fentry_needs_btf(kern):
    p = place(BY_KEY["TCP_SEND_CHALLENGE_ACK"], "fentry", synthetic_btf())
    assert p.skipped and "BTF" in p.skipped


def test_place_btf_only_hook_without_btf(kern):
    p = place(BY_KEY["NF_SEND_RESET6"], "kprobe", synthetic_btf())
    assert p.skipped and "BTF" in p.skipped
    p = place(BY_KEY["NF_SEND_RESET"], "kprobe", None, version=(6, 1))
    assert p.skipped


# -- functions in modules ---------------------------------------------------------

def nf_reject_module(monkeypatch, state):
    """nf_send_reset in module nf_reject_ipv4, in `state` (modules.locate),
    with its prototype in the module's BTF only."""
    kernel = synthetic_btf(reason=False)
    module_btf = nf_reject_module_btf()
    monkeypatch.setattr(modules, "locate", lambda f, hint=None: modules.Place(
        f, state, hint, f, why="test"))
    monkeypatch.setattr(modules, "module_btf", lambda name, base: (
        module_btf if name == "nf_reject_ipv4" else None))
    return kernel


def test_place_a_module_function_not_loaded(monkeypatch):
    kernel = nf_reject_module(monkeypatch, modules.NOT_LOADED)
    p = place(BY_KEY["NF_SEND_RESET"], "kprobe", kernel)
    assert p.skipped is None and (p.module, p.loaded) == ("nf_reject_ipv4",
                                                          False)
    assert p.positions == {"sk": 1, "skb": 2, "reason": -1}   # module BTF
    assert "-DHOOK_NF_SEND_RESET=1" in p.cflags()      # built, to attach
    assert p.status() == ("in module nf_reject_ipv4, not loaded now: hooked "
                          "when it loads")


def test_place_a_loaded_module_function(monkeypatch):
    kernel = nf_reject_module(monkeypatch, modules.IN_KERNEL)
    p = place(BY_KEY["NF_SEND_RESET"], "kprobe", kernel)
    assert (p.module, p.loaded, p.status()) == ("nf_reject_ipv4", True,
                                                "in module nf_reject_ipv4")


def test_fentry_does_not_hook_module_functions(monkeypatch):
    kernel = nf_reject_module(monkeypatch, modules.NOT_LOADED)
    p = place(BY_KEY["NF_SEND_RESET"], "fentry", kernel)
    assert p.skipped.startswith("in module nf_reject_ipv4: fentry would "
                                "keep the module from unloading")
    assert p.cflags() == []


def test_a_module_without_btf_cannot_be_placed(monkeypatch):
    nf_reject_module(monkeypatch, modules.NOT_LOADED)
    p = place(BY_KEY["NF_SEND_RESET6"], "kprobe", synthetic_btf())
    assert p.skipped == ("its arguments are known only from BTF, which does "
                         "not describe it (module nf_reject_ipv6 has none)")


@pytest.mark.parametrize("state,text", [
    (modules.INLINED, "inlined: test"),
    (modules.ABSENT, "not in this kernel: test")])
def test_place_says_where_a_missing_function_is(monkeypatch, state, text):
    nf_reject_module(monkeypatch, state)
    p = place(BY_KEY["NF_SEND_RESET"], "kprobe", synthetic_btf())
    assert p.skipped == text and p.status() == text
# -- hooks for RSTs that kill TIME_WAIT sockets ---------------------------------

def test_time_wait_kill_hook_knows_its_caller(kern, monkeypatch):
    """inet_twsk_deschedule_put takes a timewait socket, and reports only
    calls from tcp_timewait_state_process: its address range is compiled
    in."""
    ranges = {"tcp_timewait_state_process": (0xffff0000, 0xffff0400)}
    monkeypatch.setattr(features, "function_range", ranges.get)
    p = place(BY_KEY["INET_TWSK_DESCHEDULE_PUT"], "kprobe", synthetic_btf())
    assert p.positions == {"sk": 0, "skb": -1, "reason": -1}
    assert p.cflags()[-2:] == [
        "-DINET_TWSK_DESCHEDULE_PUT_CALLER_START=0xffff0000ULL",
        "-DINET_TWSK_DESCHEDULE_PUT_CALLER_END=0xffff0400ULL"]
    del ranges["tcp_timewait_state_process"]
    p = place(BY_KEY["INET_TWSK_DESCHEDULE_PUT"], "kprobe", synthetic_btf())
    assert p.skipped == ("its caller tcp_timewait_state_process is not in "
                         "kallsyms")


def test_drop_hook_needs_the_dropping_socket(kern):
    """skb:kfree_skb names the socket from 6.11 on; before, the hook is
    skipped (tracepoint mode then cannot see TIME_WAIT kills), whether
    BTF or the version says so."""
    hook = hooks.DROP_HOOK
    p = place(hook, "tracepoint", synthetic_btf())
    assert p.skipped is None and p.positions == {"sk": 3, "skb": 0,
                                                 "reason": -1}
    p = place(hook, "tracepoint", synthetic_btf(reason=False))
    assert p.skipped == "skb:kfree_skb names no socket before Linux 6.11"
    assert place(hook, "tracepoint", None, version=(6, 10)).skipped
    p = place(hook, "tracepoint", None, version=(6, 11))
    assert p.source == "version" and p.positions["sk"] == 3
