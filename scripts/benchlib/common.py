"""What every benchmark section uses: the tools run in the background, the
kernel's own count of RSTs, the kernel's BPF statistics, the storms."""

import ctypes
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
RSTTRACE = os.path.join(HERE, ".venv", "bin", "rsttrace")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
# (-B line: bpftrace's own output, its "attached" above all, comes out at
# once, not when a block is full)
BPFTRACE_COUNT = ["bpftrace", "-B", "line", "-e",
                  "tracepoint:tcp:tcp_send_reset { @n = count(); } "
                  "BEGIN { printf(\"attached\\n\"); }"]
BPFTRACE_KSTACK = ["bpftrace", "-B", "line", "-e",
                   "tracepoint:tcp:tcp_send_reset { @[kstack] = count(); } "
                   "BEGIN { printf(\"attached\\n\"); }"]


def log(msg):
    print("bench: " + msg, file=sys.stderr, flush=True)


def ns(pair, side, *cmd):
    return ["ip", "netns", "exec", pair.names[side]] + list(cmd)


def out_rsts(pair, side="b"):
    """The RSTs the kernel sent from a namespace so far (nstat)."""
    out = pair.run(side, "nstat", "-az", "TcpOutRsts")
    return int(out.split("TcpOutRsts")[1].split()[0])


def hping(pair, args, seconds, port=9, procs=1):
    """SYNs from a to a closed port on b for `seconds`."""
    gens = [subprocess.Popen(ns(pair, "a", "hping3", "-S", "-p", str(port),
                                "-q", "-s", str(1024 + 30000 * i), *args,
                                pair.ipv4["b"]),
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
            for i in range(procs)]
    time.sleep(seconds)
    for h in gens:
        h.send_signal(signal.SIGINT)
    for h in gens:
        try:
            h.wait(timeout=2)
        except subprocess.TimeoutExpired:   # hping3 can miss SIGINT
            h.kill()
            h.wait()


def storm(pair, args, seconds, procs=1, port=9):
    """(RSTs the kernel sent, their rate per second) of one hping run."""
    before = out_rsts(pair)
    t0 = time.monotonic()
    hping(pair, args, seconds, port=port, procs=procs)
    elapsed = time.monotonic() - t0
    time.sleep(0.3)
    sent = out_rsts(pair) - before
    return sent, sent / elapsed


# -- the kernel's BPF statistics --------------------------------------------

class BpfStats:
    """run_time_ns and run_cnt of every BPF program while open: the
    BPF_ENABLE_STATS command (Linux 5.8) holds them on for as long as its
    file descriptor is open, and the kernel counts such holders, so nothing
    is left changed (unlike the kernel.bpf_stats_enabled sysctl, which
    another user may be relying on)."""

    BPF_ENABLE_STATS = 32
    BPF_STATS_RUN_TIME = 0
    SYS_BPF = {"x86_64": 321, "aarch64": 280}.get(os.uname().machine, 321)

    def __enter__(self):
        libc = ctypes.CDLL(None, use_errno=True)
        attr = ctypes.c_uint32(self.BPF_STATS_RUN_TIME)
        self.fd = libc.syscall(self.SYS_BPF, self.BPF_ENABLE_STATS,
                               ctypes.byref(attr), ctypes.sizeof(attr))
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "BPF_ENABLE_STATS failed")
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


def _fdinfos(pid, kind):
    """The fdinfo of each of a process's BPF objects of `kind` ("prog",
    "map"), as dicts."""
    out = []
    d = "/proc/%d/fd" % pid
    for fd in os.listdir(d):
        try:
            if os.readlink(os.path.join(d, fd)) != "anon_inode:bpf-" + kind:
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                out.append(dict(line.rstrip("\n").split(":\t", 1)
                                for line in f if ":\t" in line))
        except OSError:
            continue
    return out


def prog_stats(pid):
    """{prog_id: (run_cnt, run_time_ns)} of a process's BPF programs."""
    return {int(i["prog_id"]): (int(i.get("run_cnt", 0)),
                                int(i.get("run_time_ns", 0)))
            for i in _fdinfos(pid, "prog")}


def prog_names(pid):
    """{prog_id: name} of a process's BPF programs (bpftool, while they
    are loaded; names may be cut to the kernel's 15 characters)."""
    out = {}
    for prog in prog_stats(pid):
        res = subprocess.run(["bpftool", "prog", "show", "id", str(prog),
                              "--json"], capture_output=True, text=True)
        if res.returncode == 0:
            out[prog] = json.loads(res.stdout).get("name", "")
    return out


def runs_between(before, after):
    """(runs, ns per run) of the programs between two prog_stats()."""
    runs = sum(c - before.get(k, (0, 0))[0] for k, (c, _) in after.items())
    took = sum(t - before.get(k, (0, 0))[1] for k, (_, t) in after.items())
    return runs, (took / runs if runs else None)


def map_bytes(pid):
    """Kernel memory of a process's BPF maps (their memlock)."""
    return sum(int(i.get("memlock", 0)) for i in _fdinfos(pid, "map"))


def rss(pid):
    """Resident memory of a process, bytes."""
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE


def proc_cpu(pid):
    """CPU seconds (user + system) a live process has used so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Traced:
    """A tool running in the background until stop(), ready once it says
    `ready` (a text on its stderr or stdout); CPU time measured with wait4
    (user + system) from then on."""

    def __init__(self, argv, ready=("stderr", "rsttrace: "),
                 stdout=subprocess.DEVNULL, timeout=180):
        self.t0 = time.monotonic()
        where, text = ready
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE if where == "stdout" else stdout,
            stderr=subprocess.PIPE, text=True)
        self.err = []
        stream = self.proc.stderr if where == "stderr" else self.proc.stdout
        seen = threading.Event()

        def watch():        # lines up to the ready one (or the end)
            for line in stream:
                self.err.append(line)
                if text in line:
                    seen.set()
                    return
            seen.set()
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        if seen.wait(timeout) and self.err and text in self.err[-1]:
            self.attach_s = time.monotonic() - self.t0
            self.cpu_at_attach = proc_cpu(self.proc.pid)
            return
        self._kill()
        raise RuntimeError("%s did not attach (in %d s): %s" % (
            argv[0], timeout, "".join(self.err)[-500:]))

    def _kill(self):
        self.proc.kill()
        _, err = self.proc.communicate()
        self.err += (err or "").splitlines(True)[-3:]

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, sig=signal.SIGINT, timeout=120):
        """Stop it (killed if it does not end within `timeout` seconds):
        (CPU seconds since attaching, its stdout or None)."""
        out, err = [], []
        readers = [threading.Thread(target=lambda f, to: to.append(f.read()),
                                    args=(f, to), daemon=True)
                   for f, to in ((self.proc.stdout, out),
                                 (self.proc.stderr, err)) if f is not None]
        for r in readers:
            r.start()
        self.proc.send_signal(sig)
        deadline = time.monotonic() + timeout
        while True:
            pid, status, ru = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                _, status, ru = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.05)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        for r in readers:
            r.join()
        self.err += err
        return (ru.ru_utime + ru.ru_stime - self.cpu_at_attach,
                out[0] if self.proc.stdout is not None else None)


def busy_until_idle(pid, quiet=0.3, limit=60):
    """Wait until a process stops using CPU (it has read what was queued
    for it); its CPU seconds then."""
    last, deadline = proc_cpu(pid), time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = proc_cpu(pid)
        if now - last < 0.02:
            return now
        last = now
    return last


def median_spread(values, fmt="%.3f"):
    """"median (min..max)" of some figures."""
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    return (fmt + " (" + fmt + ".." + fmt + ")") % (
        statistics.median(values), min(values), max(values))


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)
