"""The cross-kernel table: cells, differences and their explanations."""

import json

import pytest

from rsttrace.kernel import history
from rsttrace.lab import matrix
from rsttrace.errors import RsttraceError


def _ev(side, kind, cause, stack, reason=None, hook="h"):
    return {"side": side, "kind": kind, "cause": cause, "stack": stack,
            "reason": reason, "hook": hook}


SENT = ["tcp_v4_send_reset", "tcp_v4_rcv", "ip_protocol_deliver_rcu"]
RECV = ["tcp_reset", "tcp_rcv_state_process"]
CHALLENGE = ["tcp_send_challenge_ack.constprop.0", "tcp_validate_incoming"]


def _res(name, kernel, mode, events, ok=True, counters=None):
    return {"scenario": name, "kernel": kernel, "mode": mode,
            "events": events, "ok": ok, "verdict": "pass" if ok else
            "FAIL: missing b sent no-listener", "counters": counters or {}}


def test_version_parses_debian_and_custom_releases():
    assert history.version("6.1.0-50-amd64") == (6, 1, 0)
    assert history.version("7.2.13+deb14-amd64") == (7, 2, 13)
    assert history.version("6.18.44-fc-v657") == (6, 18, 44)
    assert history.version("5.10") == (5, 10, 0)
    assert history.version("6.12~rc1") == (6, 12, 0)
    assert history.version("weird") == (0, 0, 0)
    assert history.since("6.10.0-1-amd64", history.RST_REASON)
    assert not history.since((6, 9, 99), history.RST_REASON)


def test_emitter_names_caller_and_function_without_suffix():
    assert matrix.emitter(SENT, "tcp:tcp_send_reset") == \
        "tcp_v4_rcv > tcp_v4_send_reset"
    assert matrix.emitter(CHALLENGE, "x") == \
        "tcp_validate_incoming > tcp_send_challenge_ack"
    # no RST function on the stack: the hook
    assert matrix.emitter(["__dev_queue_xmit"], "net:net_dev_queue") == \
        "net:net_dev_queue"


def test_cell_prefers_sent_events_and_shows_counters_and_failure():
    r = _res("x", "6.1.0-1-amd64", "kprobe",
             [_ev("a", "received", "reset-received", RECV),
              _ev("b", "sent", "no-listener", SENT, "NO_SOCKET")],
             ok=False, counters={"b": {"TcpExt:ListenOverflows": 2}})
    c = matrix.cell(r, {"b": {"TcpExt:ListenOverflows": ">=1",
                              "TcpExt:EmbryonicRsts": 0}})
    assert "reset-received" not in c
    assert "b: **no-listener** `tcp_v4_rcv > tcp_v4_send_reset` NO_SOCKET" in c
    assert "b: EmbryonicRsts +0, ListenOverflows +2" in c
    assert "✗ FAIL" in c


def test_cell_without_events_says_no_rst():
    assert matrix.cell(_res("x", "6.1", "kprobe", [])) == "no RST"


def _cols(*specs):
    return [matrix.Column(k, m) for k, m in specs]


def test_reason_difference_explained_by_6_10():
    cols = _cols(("6.1.0-1-amd64", "kprobe"), ("6.12.1-amd64", "kprobe"))
    row = {cols[0].label: _res("x", "6.1.0-1-amd64", "kprobe",
                               [_ev("b", "sent", "no-listener", SENT)]),
           cols[1].label: _res("x", "6.12.1-amd64", "kprobe",
                               [_ev("b", "sent", "no-listener", SENT,
                                    "NO_SOCKET")])}
    diffs = matrix.differences(cols, row)
    assert [(d.what, d.explained) for d in diffs] == [("reason",
                                                       "kernel version")]
    assert "6.10" in diffs[0].text


def test_reason_missing_on_new_kernel_is_unexplained():
    cols = _cols(("6.12.1-amd64", "kprobe"), ("7.2.1-amd64", "kprobe"))
    row = {cols[0].label: _res("x", "6.12.1-amd64", "kprobe",
                               [_ev("b", "sent", "no-listener", SENT)]),
           cols[1].label: _res("x", "7.2.1-amd64", "kprobe",
                               [_ev("b", "sent", "no-listener", SENT,
                                    "NO_SOCKET")])}
    d, = matrix.differences(cols, row)
    assert d.what == "reason" and d.explained is None


def test_challenge_ack_missing_in_tracepoint_mode_is_explained():
    cols = _cols(("6.1.0-1-amd64", "kprobe"), ("6.18.4", "tracepoint"))
    row = {cols[0].label: _res("x", "6.1.0-1-amd64", "kprobe",
                               [_ev("b", "challenge_ack", "challenge-ack",
                                    CHALLENGE)]),
           cols[1].label: _res("x", "6.18.4", "tracepoint", [])}
    d, = matrix.differences(cols, row)
    assert (d.what, d.explained) == ("challenge ACK", "attach mode")
    assert "tracepoint mode" in d.text


def test_different_causes_are_unexplained():
    cols = _cols(("5.10.0-1-amd64", "kprobe"), ("6.1.0-1-amd64", "kprobe"))
    row = {cols[0].label: _res("x", "5.10.0-1-amd64", "kprobe", []),
           cols[1].label: _res("x", "6.1.0-1-amd64", "kprobe",
                               [_ev("b", "sent", "no-listener", SENT)])}
    d, = matrix.differences(cols, row)
    assert d.what == "cause" and d.explained is None


def test_tolerated_side_effects_compared_apart():
    cols = _cols(("6.1.0-1-amd64", "kprobe"), ("6.1.0-2-amd64", "kprobe"))
    main = _ev("a", "sent", "linger-zero-close", ["tcp_send_active_reset"])
    extra = _ev("a", "sent", "no-connection", SENT)
    row = {cols[0].label: _res("x", cols[0].kernel, "kprobe", [main, extra]),
           cols[1].label: _res("x", cols[1].kernel, "kprobe", [main])}
    d, = matrix.differences(cols, row, {("a", "sent", "no-connection")})
    assert (d.what, d.explained) == ("side effects", "timing")
    # without the tolerance it is a difference of cause, unexplained
    d, = matrix.differences(cols, row)
    assert d.what == "cause" and d.explained is None


def test_same_everywhere_no_difference():
    cols = _cols(("6.1.0-1-amd64", "kprobe"), ("6.1.0-2-amd64", "kprobe"))
    row = {c.label: _res("x", c.kernel, c.mode,
                         [_ev("b", "sent", "no-listener", SENT)])
           for c in cols}
    assert matrix.differences(cols, row) == []


def test_markdown_orders_kernels_and_lists_differences(tmp_path):
    results = [
        _res("no-listener", "6.12.1-amd64", "kprobe",
             [_ev("b", "sent", "no-listener", SENT, "NO_SOCKET")]),
        _res("no-listener", "5.10.0-1-amd64", "kprobe",
             [_ev("b", "sent", "no-listener", SENT)]),
    ]
    f = tmp_path / "r.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in results))
    text = matrix.markdown(matrix.load([str(f)]), date="2026-01-01")
    assert "Generated 2026-01-01" in text
    head = [line for line in text.splitlines() if line.startswith("| scen")]
    assert head[0].index("5.10.0-1-amd64") < head[0].index("6.12.1-amd64")
    assert "`no-listener` ⚠" not in text     # explained: no warning mark
    assert "- reason (kernel version): before 6.10" in text
    assert "In: `no-listener`." in text


def test_markdown_marks_unexplained():
    results = [_res("no-listener", "6.1.0-1-amd64", "kprobe", []),
               _res("no-listener", "6.1.0-2-amd64", "kprobe",
                    [_ev("b", "sent", "no-listener", SENT)])]
    text = matrix.markdown(results, date="2026-01-01")
    assert "`no-listener` ⚠" in text
    assert "- `no-listener`, cause: " in text
    assert "5ea8ea2cb7f1" not in text     # no note for scenarios not run


def test_markdown_carries_kernel_notes_of_scenarios_run():
    text = matrix.markdown([_res("accept-overflow-sequential", "6.1.0-1",
                                 "kprobe", [])], date="2026-01-01")
    assert "## What the kernels' history says" in text
    assert "5ea8ea2cb7f1" in text and "3.10" in text


def test_load_rejects_other_files(tmp_path):
    f = tmp_path / "events.jsonl"
    f.write_text(json.dumps({"kind": "sent"}) + "\n")
    with pytest.raises(RsttraceError, match="line 1"):
        matrix.load([str(f)])
    with pytest.raises(RsttraceError, match="cannot read"):
        matrix.load([str(tmp_path / "missing")])


def test_socketless_rst_missing_in_old_tracepoint_mode_is_explained():
    cols = _cols(("6.1.0-1-amd64", "kprobe"), ("6.1.0-1-amd64", "tracepoint"),
                 ("7.2.1-amd64", "tracepoint"))
    sent = _ev("b", "sent", "no-listener", SENT)
    recv = _ev("a", "received", "reset-received", RECV)
    row = {cols[0].label: _res("x", cols[0].kernel, "kprobe", [sent, recv]),
           cols[1].label: _res("x", cols[1].kernel, "tracepoint", [recv]),
           cols[2].label: _res("x", cols[2].kernel, "tracepoint",
                               [dict(sent, reason="NO_SOCKET"), recv])}
    diffs = matrix.differences(cols, row)
    assert [(d.what, d.explained) for d in diffs] == [
        ("cause", "attach mode and kernel version"), ("reason",
                                                      "kernel version")]
    # missing on 7.2 (whose tracepoint sees them) would be unexplained
    row[cols[2].label] = _res("x", cols[2].kernel, "tracepoint", [recv])
    d = matrix.differences(cols, row)[0]
    assert d.what == "cause" and d.explained is None


def test_time_wait_kill_missing_in_tracepoint_mode_before_6_11():
    """An RST that kills a TIME_WAIT socket: tracepoint mode sees it only
    from 6.11 on (skb:kfree_skb names the socket), kprobe mode always."""
    cols = _cols(("6.1.0-1-amd64", "kprobe"), ("6.1.0-1-amd64", "tracepoint"),
                 ("6.12.1-amd64", "tracepoint"))
    sent = _ev("b", "sent", "no-connection", SENT)
    kill = dict(_ev("a", "received", "time-wait-assassination",
                    ["inet_twsk_deschedule_put",
                     "tcp_timewait_state_process"]), state="TIME_WAIT")
    row = {cols[0].label: _res("x", cols[0].kernel, "kprobe", [sent, kill]),
           cols[1].label: _res("x", cols[1].kernel, "tracepoint", []),
           cols[2].label: _res("x", cols[2].kernel, "tracepoint",
                               [dict(sent, reason="NO_SOCKET"), kill])}
    diffs = matrix.differences(cols, row)
    assert [(d.what, d.text) for d in diffs] == [
        ("cause", matrix.SOCKETLESS_NOTE), ("cause", matrix.TIME_WAIT_NOTE),
        ("reason", matrix.REASON_NOTE)]
    assert all(d.explained for d in diffs)
    # missing on 6.12, whose tracepoint mode sees them: unexplained
    row[cols[2].label] = _res("x", cols[2].kernel, "tracepoint",
                              [dict(sent, reason="NO_SOCKET")])
    d = matrix.differences(cols, row)[0]
    assert d.what == "cause" and d.explained is None
    assert d.text.startswith("RSTs that kill TIME_WAIT sockets")


def test_a_scenario_not_run_on_a_kernel_says_so_and_differs_in_nothing():
    cols = _cols(("6.1.0-1-amd64", "kprobe"), ("6.18.44-fc", "tracepoint"))
    ran = _res("m", cols[0].kernel, "kprobe",
               [_ev("a", "sent", "memory-pressure", ["tcp_send_active_reset",
                                                    "__tcp_close"])])
    refused = dict(_res("m", cols[1].kernel, "tracepoint", []),
                   not_run="changes the host-wide net.ipv4.tcp_max_orphans")
    assert matrix.cell(refused) == ("not run here: it changes the host-wide "
                                    "net.ipv4.tcp_max_orphans")
    row = {cols[0].label: ran, cols[1].label: refused}
    assert matrix.differences(cols, row) == []


def _run(kernel, mode, error=None, not_hooked=None):
    return {"run": {"bcc": "0.26.0", "error": error,
                    "not_hooked": not_hooked or {}},
            "kernel": kernel, "mode": mode}


def test_a_kernel_that_cannot_run_is_a_column_that_says_why(tmp_path):
    """Where the catalogue cannot run (bcc too old for the headers, no
    BTF...) the matrix says so in its tracer row, not by leaving the kernel
    out; modes are in kprobe, fentry, tracepoint order."""
    records = [
        _run("6.12.95+deb12-amd64", "kprobe", error="the BPF program did "
             "not compile or load (error: unknown type name 'u128')"),
        _run("6.1.0-1-amd64", "tracepoint"),
        _res("no-listener", "6.1.0-1-amd64", "tracepoint",
             [_ev("a", "received", "reset-received", RECV)]),
        _run("6.1.0-1-amd64", "fentry", not_hooked={
            "nf_send_reset": "in module nf_reject_ipv4: fentry would keep "
            "the module from unloading"}),
        _res("no-listener", "6.1.0-1-amd64", "fentry",
             [_ev("b", "sent", "no-listener", SENT)]),
    ]
    f = tmp_path / "r.jsonl"
    f.write_text("".join(json.dumps(r) + "\n" for r in records))
    text = matrix.markdown(matrix.load([str(f)]), date="2026-01-01")
    lines = text.splitlines()
    head = next(line for line in lines if line.startswith("| scen"))
    labels = ["6.1.0-1-amd64<br>(fentry)", "6.1.0-1-amd64<br>(tracepoint)",
              "6.12.95+deb12-amd64<br>(kprobe)"]
    assert sorted(labels, key=head.index) == labels
    tracer = next(line for line in lines if line.startswith("| (tracer)"))
    cells = [c.strip() for c in tracer.split("|")[2:-1]]
    assert cells == [
        "bcc 0.26.0<br>no nf_send_reset: in module nf_reject_ipv4: fentry "
        "would keep the module from unloading", "bcc 0.26.0",
        "✗ cannot run: the BPF program did not compile or load (error: "
        "unknown type name 'u128') (bcc 0.26.0)"]
    row = next(line for line in lines if line.startswith("| `no-listener`"))
    assert row.split("|")[-2].strip() == "–"      # the kernel that cannot


def test_results_without_run_records_have_no_tracer_row():
    text = matrix.markdown([_res("no-listener", "6.1.0-1", "kprobe", [])],
                           date="2026-01-01")
    assert "(tracer)" not in text


def test_challenge_acks_missing_where_their_hook_could_not_be_placed():
    """5.10 has only tcp_send_challenge_ack.constprop.0, which fentry cannot
    hook: its fentry column sees no challenge ACK, and the run record says
    why, so the difference is explained."""
    records = [
        _run("5.10.0-32-amd64", "fentry", not_hooked={
            "tcp_send_challenge_ack": "only the compiler clone "
            "tcp_send_challenge_ack.constprop.0 exists; fentry needs the "
            "function itself"}),
        _res("x", "5.10.0-32-amd64", "fentry", []),
        _run("5.10.0-32-amd64", "kprobe"),
        _res("x", "5.10.0-32-amd64", "kprobe",
             [_ev("b", "challenge_ack", "challenge-ack", CHALLENGE)]),
        _res("x", "5.10.0-32-amd64", "tracepoint", []),
    ]
    columns, rows, _ = matrix.build(records)
    (_, _, diffs), = rows
    assert [(d.what, d.explained) for d in diffs] == [("challenge ACK",
                                                       "attach mode")]
    assert diffs[0].text == "; ".join((matrix.CHALLENGE_NOTE,
                                       matrix.UNHOOKED_CHALLENGE_NOTE))
    # without the run record saying so, it is not explained
    columns, rows, _ = matrix.build(records[1:])
    assert rows[0][2][0].explained is None
