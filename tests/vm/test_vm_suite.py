"""The VM suite (scripts/vm-suite) on stock Debian kernels, booted headless
under qemu: bookworm (6.1) and the newest kernel Debian ships (sid). There
rsttrace runs in kprobe mode on all the RST functions, which this host's
kernel cannot show. Both guests boot at once (one core each); the guest's
scenario results come back as artifacts and are checked here too. In the
same boot, last, the Debian package built by scripts/build-deb is
installed, used and removed as a user would (scripts/vm-deb-check)."""

import json
import os
import re
import subprocess

import pytest

pytestmark = pytest.mark.vm

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
SUITES = ("bookworm", "sid")
RST_FUNCTIONS = {"tcp_v4_send_reset", "tcp_v6_send_reset",
                 "tcp_send_active_reset", "tcp_reset",
                 "tcp_send_challenge_ack"}


# scripts/vm-deb-check's checks, in order
DEB_CHECKS = ("no rsttrace before the install", "purged ",
              "brought back", "/usr/bin/rsttrace runs the package's",
              "rsttrace doctor: kprobe mode", "trace --json saw the RST",
              "bash completion", "apt-get remove: every file",
              "purge: no BPF program left")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, deb_package):
    # Both images at once (debootstrap and apt wait on the network), then
    # both guests at once.
    builds = {suite: subprocess.Popen(
        [os.path.join(ROOT, "scripts", "vm-image"), suite],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for suite in SUITES}
    for suite, proc in builds.items():
        _, err = proc.communicate(timeout=1800)
        assert proc.returncode == 0, "vm-image %s: %s" % (suite, err)
    procs = {}
    keep = os.environ.get("RSTTRACE_VM_ARTIFACTS")   # e.g. for the matrix
    for suite in SUITES:
        art = tmp_path_factory.mktemp(suite)
        log = open(art / "vm.log", "w")
        procs[suite] = (subprocess.Popen(
            [os.path.join(ROOT, "scripts", "vm"), "--timeout", "2400",
             "--artifacts", str(art), "--put", deb_package[0], suite, "--",
             "scripts/vm-suite"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT), art, log)
    out = {}
    for suite, (proc, art, log) in procs.items():
        rc = proc.wait(timeout=3000)
        log.close()
        records = [json.loads(line) for f in art.glob("scenarios-*.jsonl")
                   for line in f.read_text().splitlines() if line.strip()]
        # the tracer's own record first (lab.run.run_record), then one
        # per scenario
        results = [r for r in records if "scenario" in r]
        out[suite] = (rc, (art / "vm.log").read_text(), results,
                      [r["run"] for r in records if "run" in r])
        if keep:
            os.makedirs(keep, exist_ok=True)
            subprocess.run(["cp", "-r", "%s/." % art, keep], check=True)
            os.replace(os.path.join(keep, "vm.log"),
                       os.path.join(keep, "vm-%s.log" % suite))
    return out


@pytest.mark.parametrize("suite", SUITES)
def test_guest_suite_passes(runs, suite):
    rc, log, _, _ = runs[suite]
    assert rc == 0, "%s guest suite failed:\n%s" % (suite, log[-6000:])
    assert re.search(r"\d+ passed", log), log[-3000:]
    assert not re.search(r"\d+ (failed|skipped|error)", log), log[-3000:]


@pytest.mark.parametrize("suite", SUITES)
def test_kprobe_mode_sees_every_rst_function(runs, suite):
    _, log, results, run = runs[suite]
    assert results, "no scenario results came back:\n" + log[-3000:]
    assert {r["mode"] for r in results} == {"kprobe"}
    # every hook placed, nf_send_reset(6) too, whose module loads later
    assert [(r["error"], r["not_hooked"]) for r in run] == [(None, {})]
    hooks = {e["hook"] for r in results for e in r["events"]}
    assert RST_FUNCTIONS <= hooks, "not seen: %s" % (RST_FUNCTIONS - hooks)


@pytest.mark.parametrize("suite", SUITES)
def test_guest_shows_challenge_acks_reject_and_overflow(runs, suite):
    _, _, results, _ = runs[suite]
    by = {r["scenario"]: r for r in results}
    for name in ("challenge-ack-rst", "challenge-ack-syn"):
        kinds = {(e["side"], e["kind"], e["hook"]) for e in by[name]["events"]}
        assert ("b", "challenge_ack", "tcp_send_challenge_ack") in kinds, name
        assert "cannot show" not in by[name]["verdict"]
    reject = [e for e in by["firewall-reject"]["events"]
              if (e["side"], e["cause"]) == ("b", "firewall-reject")]
    assert reject
    # nf_reject_ipv4 is loaded by the REJECT rule, after the tracer started:
    # its frames must still be named (symbols reloaded when modules change)
    assert [f.split(".")[0] for f in reject[0]["stack"][:2]] == [
        "nf_send_reset", "nft_reject_inet_eval"], reject[0]["stack"]
    abort = by["accept-overflow-abort"]["counters"]["b"]
    assert abort.get("TcpExt:EmbryonicRsts") == 1
    assert abort.get("TcpExt:ListenOverflows", 0) >= 1
    assert "TcpExt:EmbryonicRsts" not in by["accept-overflow-no-abort"][
        "counters"]["b"]
    # the guest may change host-wide settings: memory pressure for real
    oom = by["memory-pressure"]
    assert "cannot show" not in oom["verdict"], oom["verdict"]
    assert ("a", "sent", "memory-pressure") in {
        tuple(o) for o in oom["observed"]}
    assert oom["counters"]["a"].get("TcpExt:TCPAbortOnMemory", 0) >= 1
    for r in results:
        assert r["ok"], "%s: %s" % (r["scenario"], r["verdict"])


@pytest.mark.parametrize("suite", SUITES)
def test_reject_modules_are_hooked_as_they_load(runs, suite):
    """REJECT rules added while tracing, the first to need nf_reject_ipv4
    and nf_reject_ipv6 (iptables, ip6tables, then nft inet, IPv4 and IPv6):
    every RST is firewall-reject, seen by the kprobe on the module's
    function from the first packet on (not only by the packet hook), and
    the tracer says the hooks attached late; the rules removed, the
    modules unload while tracing, and the scenarios after it load them
    again and are seen the same way."""
    _, log, results, _ = runs[suite]
    by = {r["scenario"]: r for r in results}
    late = by["firewall-reject-late"]
    assert late["ok"], late["verdict"]
    sent = [e for e in late["events"] if e["side"] == "b"]
    assert sorted(e["hook"] for e in sent) == [
        "nf_send_reset", "nf_send_reset", "nf_send_reset6", "nf_send_reset6"]
    for e in sent:
        assert e["cause"] == "firewall-reject"
        assert e["stack"][0].split(".")[0] == e["hook"], e["stack"]
    assert len([e for e in late["events"] if e["side"] == "a" and
                e["cause"] == "reset-received"]) == 4
    said = late["messages"]
    versions = (("", "4"), ("6", "6"))
    came = [said.index("hook nf_send_reset%s attached late: module "
                       "nf_reject_ipv%s loaded" % v) for v in versions]
    went = [said.index("hook nf_send_reset%s idle: module nf_reject_ipv%s "
                       "unloaded (hooked again when it loads)" % v)
            for v in versions]
    assert max(came) < min(went), said
    for name, hook in (("firewall-reject", "nf_send_reset"),
                       ("firewall-reject-ipv6", "nf_send_reset6"),
                       ("conntrack-invalid", "nf_send_reset")):
        assert by[name]["ok"], by[name]["verdict"]
        assert [e["hook"] for e in by[name]["events"]
                if e["side"] == "b"] == [hook], name


@pytest.mark.parametrize("suite", SUITES)
def test_per_event_tests_ran_in_every_mode(runs, suite):
    """The per-event tests ran, and passed, in kprobe, fentry and tracepoint
    mode and through the perf buffer: a stock Debian kernel offers them all
    (scripts/vm-suite sets RSTTRACE_TEST_MODES, so a missing mode fails
    there instead of leaving its tests out)."""
    import provoke
    _, log, _, _ = runs[suite]
    causes = len(provoke.cases(4)) + len(provoke.cases(6))   # 13 each
    for param in ("kprobe", "fentry", "tracepoint", "tracepoint-perf"):
        passed = re.findall(r"^PASSED tests/integration/test_trace_events\.py"
                            r"::test_cause\[%s-(?!perf-)[a-z0-9-]+\]$"
                            % re.escape(param), log, re.M)
        assert len(passed) == causes, (param, passed, log[-3000:])
    assert re.search(r"^PASSED tests/integration/test_trace_events\.py::"
                     r"test_rsttrace_agrees_on_the_modes$", log, re.M)


@pytest.mark.parametrize("suite", SUITES)
def test_the_debian_package_installs_works_and_leaves_nothing(runs, suite):
    """apt-get install ./rsttrace_*.deb on the guest with rsttrace's Python
    dependencies purged and the tree hidden, doctor, a trace that sees a
    provoked RST, completion, remove and purge (scripts/vm-deb-check)."""
    _, log, _, _ = runs[suite]
    lines = [line for line in log.splitlines() if line.startswith("ok: ")]
    checks = [line for line in lines
              if any(c in line for c in DEB_CHECKS)]
    assert len(checks) == len(DEB_CHECKS), (checks, log[-5000:])
    for check, line in zip(DEB_CHECKS, checks):
        assert check in line, (check, checks)
    for dep in ("python3-bpfcc", "python3-pyroute2", "python3-click",
                "python3-tabulate", "python3-prometheus-client"):
        assert dep in checks[1], (dep, checks[1])
