"""The exporter's metrics without a kernel: label values and their bounds,
the families a scrape shows (parsed back with prometheus_client's own
parser), --listen, the kernel's BPF statistics lines."""

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from rsttrace.cli import exporter
from rsttrace.errors import UsageError
from rsttrace.kernel import bpf_stats
from rsttrace.output import metric_labels, metrics
from rsttrace.output.metric_labels import ResetCounters


def record(**over):
    rec = {"kind": "sent", "cause": "no-listener",
           "hook": "tcp:tcp_send_reset", "state": None,
           "reason": "NO_SOCKET", "family": 4, "stack": [],
           "netns": 4026531840, "local_port": 8080}
    rec.update(over)
    return rec


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_bounded_values_name_every_missing_value():
    assert metric_labels.bounded_values(record()) == (
        "sent", "no-listener", "tcp:tcp_send_reset", "none", "NO_SOCKET",
        "ipv4")
    assert metric_labels.bounded_values(record(
        family=None, cause=None, reason=None, hook=None)) == (
        "sent", "unknown", "none", "none", "none", "none")


def test_counts_add_up_per_series():
    c = ResetCounters()
    c.add(record(), 3)
    c.add(record(), 4)
    c.add(record(kind="received", cause="reset-received"), 1)
    assert sorted(n for _, n in c.snapshot()) == [1, 7]


def test_local_port_is_ephemeral_or_the_service_port():
    c = ResetCounters(["local_port"])
    c.add(record(local_port=0), 1)
    c.add(record(local_port=443), 1)
    c.add(record(local_port=0, family=None), 1)
    assert {v[-1] for v, _ in c.snapshot()} == {"ephemeral", "443", "none"}


def test_an_opt_in_label_keeps_at_most_max_values():
    c = ResetCounters(["netns"], max_values=3)
    for ns in range(1, 11):
        c.add(record(netns=ns), 1)
    values = {v[-1]: n for v, n in c.snapshot()}
    assert values == {"1": 1, "2": 1, "3": 1, "other": 7}


def test_idle_values_are_forgotten_and_make_room():
    clock = Clock()
    c = ResetCounters(["netns"], max_values=2, forget_after=60, clock=clock)
    c.add(record(netns=1), 1)
    clock.now += 30
    c.add(record(netns=2), 1)
    clock.now += 40                 # 1 idle for 70 s, 2 for 40 s
    c.forget()
    assert {v[-1] for v, _ in c.snapshot()} == {"2"}
    assert c.forgotten == 1
    c.add(record(netns=3), 5)       # the freed place
    assert {v[-1]: n for v, n in c.snapshot()} == {"2": 1, "3": 5}


def test_a_value_that_counts_again_is_not_forgotten():
    clock = Clock()
    c = ResetCounters(["netns"], forget_after=60, clock=clock)
    c.add(record(netns=1), 1)
    clock.now += 50
    c.add(record(netns=1), 1)
    clock.now += 50
    c.forget()
    assert c.snapshot() and c.forgotten == 0


@pytest.mark.parametrize("name", ["pid", "daddr", "sport", "peer"])
def test_unbounded_labels_are_refused(name):
    with pytest.raises(UsageError) as e:
        metric_labels.check([name])
    assert "never" in str(e.value)


class Containers:
    """What ContainerIndex.of_netns answers, for namespaces 7 and 9."""

    def of_netns(self, inode):
        from rsttrace.context.containers import Pod
        from rsttrace.context.runtimes import Container
        web = Container("cri-o", "c0ffee", "web", "nginx", "default", "web-1",
                        False)
        anon = Container("docker", "deadbeef", None, "busybox", None, None,
                         False)
        return {7: (web, Pod("default", "web-1")),
                9: (anon, None)}.get(inode, (None, None))


def test_container_and_pod_labels_come_from_the_netns():
    assert metric_labels.check(["pod", "netns", "container"]) == (
        "netns", "container", "pod")
    assert metric_labels.cflags(("netns", "pod")) == ["-DAGG_NETNS"]
    c = ResetCounters(["container", "pod"], containers=Containers())
    c.add(record(netns=7), 2)
    c.add(record(netns=8), 1)
    c.add(record(netns=9), 4)
    assert {v[-2:]: n for v, n in c.snapshot()} == {
        ("web", "default/web-1"): 2, ("none", "none"): 1,
        ("deadbeef", "none"): 4}


def test_cflags_of_local_port_carry_the_ephemeral_range():
    assert metric_labels.cflags(("local_port",), (32768, 60999)) == [
        "-DAGG_LOCAL_PORT", "-DEPHEMERAL_LO=32768", "-DEPHEMERAL_HI=60999"]
    assert metric_labels.cflags(()) == []


def scrape(collector):
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    text = generate_latest(registry).decode()
    return {s.name + repr(sorted(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text)
            for s in fam.samples}, text


def test_a_scrape_shows_every_family():
    c = ResetCounters(["netns"])
    c.add(record(), 5)
    clock = Clock()
    col = metrics.MetricsCollector(c, {"version": "1", "mode": "kprobe",
                                       "kernel": "6.1"}, clock=clock)
    col.update(metrics.Readings(
        lost=2, programs={"on_tcp_reset": (1500000000, 30)}, stats_on=True,
        out_rsts=(4026531840, 42), at=clock.now))
    col.failed("snmp")
    clock.now += 3
    samples, text = scrape(col)
    labels = sorted({"direction": "sent", "cause": "no-listener",
                     "hook": "tcp:tcp_send_reset", "state": "none",
                     "reason": "NO_SOCKET", "family": "ipv4",
                     "netns": "4026531840"}.items())
    assert samples["rsttrace_resets_total" + repr(labels)] == 5
    assert samples["rsttrace_events_lost_total[]"] == 2
    prog = repr([("program", "on_tcp_reset")])
    assert samples["rsttrace_bpf_runs_total" + prog] == 30
    assert samples["rsttrace_bpf_run_seconds_total" + prog] == 1.5
    assert samples["rsttrace_bpf_stats_enabled[]"] == 1
    assert samples["rsttrace_kernel_tcp_out_rsts_total" +
                   repr([("netns", "4026531840")])] == 42
    assert samples["rsttrace_build_info" + repr(sorted(
        {"version": "1", "mode": "kprobe", "kernel": "6.1"}.items()))] == 1
    assert samples["rsttrace_errors_total" + repr([("source", "snmp")])] == 1
    assert samples["rsttrace_harvest_age_seconds[]"] == 3
    assert samples["rsttrace_uptime_seconds[]"] == 3
    assert "# TYPE rsttrace_resets_total counter" in text


def test_before_the_first_harvest_a_scrape_has_no_kernel_counter():
    samples, _ = scrape(metrics.MetricsCollector(ResetCounters(), {}))
    assert not any(k.startswith("rsttrace_kernel_tcp") for k in samples)
    assert samples["rsttrace_events_lost_total[]"] == 0


@pytest.mark.parametrize("text,want", [
    ("127.0.0.1:9867", ("127.0.0.1", 9867)),
    (":9100", ("0.0.0.0", 9100)),
    ("[::1]:80", ("::1", 80)),
    ("[::]:9867", ("::", 9867)),
])
def test_listen_addresses(text, want):
    assert exporter.parse_listen(text) == want


@pytest.mark.parametrize("text", ["9867", "host:", "a:b", ":0", ":65536"])
def test_bad_listen_addresses(text):
    with pytest.raises(UsageError):
        exporter.parse_listen(text)


FDINFO = """pos:\t0
flags:\t02000002
mnt_id:\t15
ino:\t1057
prog_type:\t26
prog_jited:\t1
prog_tag:\t3b185187f1855c4c
memlock:\t4096
prog_id:\t77
run_time_ns:\t123456
run_cnt:\t789
recursion_misses:\t0
verified_insns:\t410
"""


def test_bpf_stats_from_fdinfo():
    assert bpf_stats.parse_fdinfo(FDINFO) == (123456, 789)
    assert bpf_stats.parse_fdinfo("prog_type:\t26\n") is None


def test_bpf_stats_sysctl(tmp_path):
    path = tmp_path / "bpf_stats_enabled"
    path.write_text("0\n")
    assert not bpf_stats.sysctl_on(str(path))
    path.write_text("1\n")
    assert bpf_stats.sysctl_on(str(path))
    assert not bpf_stats.sysctl_on(str(tmp_path / "absent"))
