"""rsttrace soak; run through scripts/soak (root).

`rsttrace trace --json --summary -o FILE -C 20 -W 3 --compress` runs for
--minutes (30 by default) while a moderate, varied stream of real RSTs
flows through four namespace pairs:

  spread     two pairs, 16 extra IPv4 and 16 IPv6 addresses on each side:
             SYNs to closed ports and SO_LINGER-0 closes between random
             addresses and ports, paced to --rate provocations a second
  catalogue  two more pairs running rsttrace's scenario catalogue over and
             over (every scenario that changes nothing host-wide): many
             distinct kernel paths, causes and socket states

Every --every seconds (10) rsttrace's RSS and CPU are sampled from /proc.
bench/SOAK.md gets RSS after warm-up and at the end, the growth per hour
(least squares after warm-up), CPU, events and lost (rsttrace's own
summary), and every sample.

With --exporter it is `rsttrace exporter --label netns,local_port` under
the same stream instead (the random ports make label values come and go:
--max-label-values and --forget-after must bound them), scraped at every
sample: bench/SOAK-EXPORTER.md adds the scrape time, the number of series
and the RSTs counted against the kernel's own count.
"""

import argparse
import datetime
import errno
import glob
import gzip
import json
import multiprocessing
import os
import platform
import random
import signal
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

from rsttrace.lab.netns import NamespacePair  # noqa: E402
from rsttrace.output import rotation  # noqa: E402
from rsttrace.output.outfile import OutputFile  # noqa: E402

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RSTTRACE = os.path.join(HERE, ".venv", "bin", "rsttrace")
CLK_TCK = os.sysconf("SC_CLK_TCK")
EXTRA = range(10, 26)           # extra host numbers per side
LISTEN_PORT = 8080
WARMUP_S = 60
EXPORTER_PORT = 9871


def log(msg):
    print("soak: " + msg, file=sys.stderr, flush=True)


def add_addresses(pair):
    """16 more IPv4 and IPv6 addresses on each side: ([a's], [b's])."""
    out = {}
    for side in "ab":
        mine = []
        for h in EXTRA:
            host = h if side == "a" else h + 100
            v4 = "198.18.%d.%d" % (pair.subnet, host)
            v6 = "2001:db8:%x::%x" % (pair.subnet, host)
            pair.run(side, "ip", "addr", "add", v4 + "/24", "dev",
                     pair.veth[side])
            pair.run(side, "ip", "addr", "add", v6 + "/64", "dev",
                     pair.veth[side], "nodad")
            mine += [(socket.AF_INET, v4), (socket.AF_INET6, v6)]
        out[side] = mine
    return out


def spread(pairs, addresses, rate, stop, done):
    """Closed-port SYNs and linger-0 closes between random addresses and
    ports of `pairs`, `rate` a second, until `stop` is set; `done` counts
    those that made their two RSTs."""
    rng = random.Random(1)
    listeners = {}
    for i, pair in enumerate(pairs):
        for fam in (socket.AF_INET, socket.AF_INET6):
            lst = pair.socket("b", fam)
            lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if fam == socket.AF_INET6:
                lst.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            lst.bind(("" if fam == socket.AF_INET else "::", LISTEN_PORT))
            lst.listen(64)
            listeners[i, fam] = lst
    t0 = time.monotonic()
    while not stop.is_set():
        i = rng.randrange(len(pairs))
        pair = pairs[i]
        fam, src = rng.choice(addresses[i]["a"])
        dst = rng.choice([a for f, a in addresses[i]["b"] if f == fam])
        cli = pair.socket("a", fam)
        cli.settimeout(2)
        try:
            cli.bind((src, 0))
            if rng.random() < 0.6:      # b: no-listener, a: reset-received
                refused = cli.connect_ex((dst, rng.randrange(20000, 60000)))
                if refused != errno.ECONNREFUSED:
                    continue
            else:                       # a: linger-zero, b: reset-received
                cli.connect((dst, LISTEN_PORT))
                srv, _ = listeners[i, fam].accept()
                cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                               struct.pack("ii", 1, 0))
                cli.close()
                srv.close()
        except OSError:
            continue                    # counted only when it made its RSTs
        finally:
            cli.close()
            pair.close_sockets()
        with done.get_lock():
            done.value += 1
        lag = t0 + done.value / rate - time.monotonic()
        if lag > 0:
            time.sleep(lag)


def catalogue(pairs, stop, done):
    """rsttrace's scenarios, round and round, until `stop` is set."""
    from rsttrace.lab.catalogue import CATALOGUE
    scenarios = [sc for sc in CATALOGUE if not sc.host_wide]
    n = 0
    while not stop.is_set():
        pair = pairs[n % len(pairs)]
        try:
            scenarios[n % len(scenarios)].fn(pair)
        except Exception:
            pass                        # a verdict is not what is measured
        pair.close_sockets()
        if n % len(scenarios) == len(scenarios) - 1:
            for side in "ab":           # rules scenarios left behind
                subprocess.run(["ip", "netns", "exec", pair.names[side],
                                "nft", "flush", "ruleset"])
        n += 1
        with done.get_lock():
            done.value += 1


def sample(pid):
    """(RSS in KiB, CPU seconds) of process `pid`."""
    with open("/proc/%d/status" % pid) as f:
        rss = int(next(l for l in f if l.startswith("VmRSS:")).split()[1])
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return rss, (int(fields[11]) + int(fields[12])) / CLK_TCK


def slope_per_hour(points):
    """Least-squares slope of [(seconds, value)], per hour."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    return 3600 * sum((t - mx) * (v - my) for t, v in points) / var \
        if var else 0.0


def last_summary(path):
    """The summary record at the end of the capture's newest file."""
    d, name = os.path.split(path)
    number, compressed, entry = rotation.members(name, os.listdir(d))[-1]
    opener = gzip.open if compressed else open
    with opener(os.path.join(d, entry), "rt") as f:
        last = f.read().splitlines()[-1]
    return json.loads(last)


def tracer_argv(a, cap, pairs):
    """The rsttrace command the soak runs, and the line it says once
    ready."""
    if a.exporter:
        argv = [RSTTRACE, "exporter", "--listen",
                "127.0.0.1:%d" % EXPORTER_PORT, "--interval", "5",
                "--label", "netns,local_port", "--max-label-values", "50",
                "--forget-after", "300"]
        ready = "exporting to"
    else:
        argv = [RSTTRACE, "trace", "--json", "--summary", "-o", cap, "-C",
                "20", "-W", "3", "--compress"]
        ready = "tracing in"
    for p in pairs:
        argv += ["--netns", p.names["a"], "--netns", p.names["b"]]
    return argv, ready


def scrape():
    """(seconds the scrape took, {metric line name: value summed})."""
    import urllib.request
    t0 = time.monotonic()
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics"
                                % EXPORTER_PORT, timeout=30) as r:
        text = r.read().decode()
    took = time.monotonic() - t0
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{", 1)[0].split(" ", 1)[0]
            values.setdefault(name, []).append(float(line.rsplit(" ", 1)[1]))
    return took, values


def run(a, workdir):
    pairs = [NamespacePair().create() for _ in range(4)]
    stop = multiprocessing.Event()
    gens, proc = [], None
    try:
        addresses = [add_addresses(p) for p in pairs[:2]]
        cap = os.path.join(workdir, "cap.jsonl")
        argv, ready = tracer_argv(a, cap, pairs)
        err = open(os.path.join(workdir, "stderr"), "w+")
        proc = subprocess.Popen(argv, stderr=err)
        while ready not in open(err.name).read():
            if proc.poll() is not None:
                raise RuntimeError(open(err.name).read())
            time.sleep(0.2)
        counts = [multiprocessing.Value("l", 0) for _ in range(2)]
        gens = [multiprocessing.Process(target=spread, daemon=True, args=(
                    pairs[:2], addresses, a.rate, stop, counts[0])),
                multiprocessing.Process(target=catalogue, daemon=True, args=(
                    pairs[2:], stop, counts[1]))]
        for g in gens:
            g.start()
        samples = measure(proc.pid, a.minutes * 60, a.every, counts, gens,
                          scrape if a.exporter else None)
        stop.set()
        for g in gens:
            g.join(30)
        time.sleep(1)
        final = None
        if a.exporter:
            time.sleep(6)               # one more harvest (--interval 5)
            final = scrape()[1]
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(120)
        if rc != 0:
            raise RuntimeError("rsttrace exited %d: %s" % (
                rc, open(err.name).read()[-2000:]))
        if a.exporter:
            return samples, final, [c.value for c in counts], 0
        files = len(glob.glob(cap + "*"))
        return samples, last_summary(cap), [c.value for c in counts], files
    finally:
        stop.set()
        for g in gens:
            if g.is_alive():
                g.kill()
                g.join()
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for p in pairs:
            p.close()


def measure(pid, seconds, every, counts, gens, scraper=None):
    """[(elapsed s, RSS KiB, CPU % of one core over the interval,
    provocations so far, (scrape s, series) or None)] every `every` seconds
    for `seconds`; stops with an error when a traffic generator died."""
    t0 = time.monotonic()
    _, cpu0 = sample(pid)
    out, prev = [], (0.0, cpu0)
    while True:
        time.sleep(max(0.0, t0 + (len(out) + 1) * every - time.monotonic()))
        t = time.monotonic() - t0
        rss, cpu = sample(pid)
        scraped = None
        if scraper is not None:
            took, values = scraper()
            scraped = (took, len(values.get("rsttrace_resets_total", [])))
        out.append((t, rss, 100 * (cpu - prev[1]) / (t - prev[0]),
                    sum(c.value for c in counts), scraped))
        prev = (t, cpu)
        dead = [g.name for g in gens if not g.is_alive()]
        if dead:
            raise RuntimeError("traffic generator %s died" % dead)
        if len(out) % max(1, int(60 / every)) == 0:
            log("%4.0f s  RSS %.1f MiB  CPU %.0f%%" % (t, rss / 1024,
                                                       out[-1][2]))
        if t >= seconds:
            return out


def heading(a, took, what):
    uname = platform.uname()
    return [
        "# Soak" + (" (exporter)" if a.exporter else ""),
        "",
        "`scripts/soak --minutes %g%s` on %s (%s, %d cores), %s UTC; %.1f "
        "minutes in all. The machine is shared: other test suites and qemu "
        "guests ran on the same two cores during the run, so CPU figures "
        "are noisy; memory figures are rsttrace's own."
        % (a.minutes, " --exporter" if a.exporter else "", uname.node,
           uname.release, os.cpu_count(),
           datetime.datetime.now(datetime.timezone.utc).strftime(
               "%Y-%m-%d %H:%M"), took / 60),
        "",
        "rsttrace ran `%s` (8 namespaces) while two pairs took closed-port "
        "SYNs and SO_LINGER-0 closes between 32 addresses a side (IPv4 and "
        "IPv6) and random ports, paced to %d a second, and two more pairs "
        "ran the scenario catalogue round and round." % (what, a.rate),
        "",
        "| | |",
        "|---|---|"]


def memory_rows(samples):
    warm = [s for s in samples if s[0] >= min(WARMUP_S, samples[-1][0] / 2)]
    growth = slope_per_hour([(t, rss / 1024) for t, rss, *_ in warm])
    return [
        "| RSS at the first sample (%.0f s) | %.1f MiB |" % (
            samples[0][0], samples[0][1] / 1024),
        "| RSS after warm-up (%.0f s) | %.1f MiB |" % (warm[0][0],
                                                      warm[0][1] / 1024),
        "| RSS at the end (%.0f s) | %.1f MiB |" % (samples[-1][0],
                                                   samples[-1][1] / 1024),
        "| highest RSS | %.1f MiB |" % (max(s[1] for s in samples) / 1024),
        "| RSS growth after warm-up (least squares) | %+.2f MiB per hour |"
        % growth,
        "| CPU, mean of the samples | %.1f%% of one core |" % (
            sum(s[2] for s in samples) / len(samples))]


def report(a, samples, summary, provoked, files, took):
    paths = {r["path"] for r in summary["rows"]}
    lines = heading(a, took, "trace --json --summary -o FILE -C 20 -W 3 "
                    "--compress --netns ...") + memory_rows(samples) + [
        "| events delivered (rsttrace's summary) | %d |" % summary["events"],
        "| lost (buffer full) | %d |" % summary["lost"],
        "| matched in the kernel | %d |" % summary["kernel_events"],
        "| provocations: spread / scenario runs | %d / %d |" % tuple(
            provoked),
        "| distinct causes / kernel paths (first 3 frames) | %d / %d |" % (
            len(summary["by_cause"]), len(paths)),
        "| capture files left (-W 3) | %d |" % files,
        "",
        "## Samples",
        "",
        "| s | RSS MiB | CPU % | provocations |",
        "|---|---|---|---|",
    ] + ["| %.0f | %.1f | %.1f | %d |" % (t, rss / 1024, cpu, n)
         for t, rss, cpu, n, _ in samples]
    return "\n".join(lines) + "\n"


def report_exporter(a, samples, final, provoked, took):
    scrapes = [s[4][0] for s in samples]
    resets = final.get("rsttrace_resets_total", [])
    series = [s[4][1] for s in samples] + [len(resets)]
    lines = heading(a, took, "exporter --label netns,local_port "
                    "--max-label-values 50 --forget-after 300 --netns ...") \
        + memory_rows(samples) + [
        "| RSTs counted (rsttrace_resets_total, summed) | %d |" % sum(resets),
        "| lost (rsttrace_events_lost_total) | %d |" % sum(
            final.get("rsttrace_events_lost_total", [0])),
        "| errors (rsttrace_errors_total) | %d |" % sum(
            final.get("rsttrace_errors_total", [0])),
        "| series of rsttrace_resets_total: at the end / most | %d / %d |"
        % (len(resets), max(series)),
        "| series forgotten (rsttrace_series_forgotten_total) | %d |" % sum(
            final.get("rsttrace_series_forgotten_total", [0])),
        "| scrape time: mean / longest | %.1f ms / %.1f ms |" % (
            1000 * sum(scrapes) / len(scrapes), 1000 * max(scrapes)),
        "| provocations: spread / scenario runs | %d / %d |" % tuple(
            provoked),
        "",
        "## Samples",
        "",
        "| s | RSS MiB | CPU % | provocations | scrape ms | series |",
        "|---|---|---|---|---|---|",
    ] + ["| %.0f | %.1f | %.1f | %d | %.1f | %d |" % (
        t, rss / 1024, cpu, n, 1000 * sc[0], sc[1])
        for t, rss, cpu, n, sc in samples]
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--every", type=float, default=10,
                    help="seconds between samples")
    ap.add_argument("--rate", type=int, default=100,
                    help="spread provocations a second (two RSTs each)")
    ap.add_argument("--exporter", action="store_true",
                    help="soak `rsttrace exporter` instead of trace")
    ap.add_argument("-o", "--output", help="results (default "
                    "bench/SOAK.md, with --exporter bench/SOAK-EXPORTER.md)")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: needs root (BPF, namespaces)")
    t0 = time.monotonic()
    import tempfile
    with tempfile.TemporaryDirectory(prefix="rsttrace-soak-") as workdir:
        samples, summary, provoked, files = run(a, workdir)
    took = time.monotonic() - t0
    if a.exporter:
        text = report_exporter(a, samples, summary, provoked, took)
    else:
        text = report(a, samples, summary, provoked, files, took)
    out = OutputFile(a.output or os.path.join(
        HERE, "bench", "SOAK-EXPORTER.md" if a.exporter else "SOAK.md"))
    out.open().write(text)
    out.commit()
    print(text)


if __name__ == "__main__":
    main()
