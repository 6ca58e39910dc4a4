"""The reliability table: the bad inputs and faults the suite tries on
rsttrace, how many, what survives and what is lost. docs/reliability.md is
rendered from it (tests/unit/test_reliability_doc.py fails until the file
matches, and until every test named here exists); the tests that inject
the faults read their numbers from here, so the document says what they
assert. Regenerate with

    .venv/bin/python tests/reliability.py > docs/reliability.md
"""

import collections

# -- bad input to `rsttrace report` (tests/unit/test_report_fuzz.py) --------

FUZZ_TEST = "tests/unit/test_report_fuzz.py"
# kind -> (examples hypothesis tries, what they are)
FUZZ = collections.OrderedDict([
    ("bytes", (200, "random bytes (any length up to 4 KiB)")),
    ("gzip", (100, "random bytes gzip-compressed, whole or cut short")),
    ("json", (200, "random JSON values, one per line (objects, lists, "
                   "strings, numbers, nesting)")),
    ("fields", (200, "JSON objects with the keys of an event record and "
                     "values of any JSON type")),
    ("mutated", (400, "real records (tests/data/*.jsonl) mutated: a value "
                      "replaced, a key dropped or added, the line cut, bytes "
                      "flipped or inserted; plain or gzipped, one file or a "
                      "rotated set")),
])
HAND_WRITTEN = ("tests/unit/test_report.py", "tests/unit/test_capture.py",
                "tests/unit/test_report_output.py")

# -- faults injected into a running `rsttrace trace` -----------------------

KILL_ROUNDS = 20        # closed-port connections before the kill: 2 RSTs each
STORM_SECONDS = 3       # of SYN flood before SIGTERM
FULL_DISK_KIB = 64      # the tmpfs the capture fills
FULL_DISK_SYNS = 1500   # SYNs to a closed port: far more than 64 KiB of lines
MODULE_ROUNDS = 5       # REJECTed connections while the module is loaded

Fault = collections.namedtuple("Fault", "fault injected survived lost tests")

FAULTS = [
    Fault("kill -9 mid-trace",
          "SIGKILL to `trace --json -o FILE` (and with `-C 2k --compress`) "
          "after %d closed-port connections (%d RSTs) were seen in FILE, "
          "then %d more provoked and the kill sent at once"
          % (KILL_ROUNDS, 2 * KILL_ROUNDS, KILL_ROUNDS),
          "FILE (the whole rotated set) holds every event of the first %d, "
          "exactly, and only whole lines: every line passes the record "
          "schema and `report FILE` reads the set" % (2 * KILL_ROUNDS),
          "nothing read: lines are written at each batch (at most 100 ms "
          "behind); what the kill cut short had not been read",
          ["tests/integration/test_capture_faults.py::"
           "test_kill9_mid_trace_keeps_every_event_read"]),
    Fault("kill -9 mid-trace: what stays loaded",
          "SIGKILL to `trace` in each mode (default, --packets, "
          "--summary-only)",
          "no BPF program, link or map of the killed run stays loaded",
          "-", ["tests/integration/test_killed.py::"
                "test_killed_tracer_leaves_no_bpf"]),
    Fault("kill -9 mid-scenario",
          "SIGKILL to `scenarios run` while its namespaces, veths, nft table "
          "and a host-wide sysctl are in place",
          "the next run removes the namespaces and restores the sysctl; a "
          "concurrent run's are left alone",
          "-", ["tests/integration/test_killed.py::"
                "test_killed_scenarios_run_is_cleaned_up_by_the_next",
                "tests/integration/test_killed.py::"
                "test_killed_host_wide_change_is_restored_by_the_next_run"]),
    Fault("SIGTERM mid-storm",
          "a SYN flood to a closed port from two raw-socket senders for %d s, "
          "SIGTERM to `trace --json --summary -o FILE` while it lasts"
          % STORM_SECONDS,
          "exit 0; every event read is in FILE (events in FILE = the "
          "summary's count) and events + lost = what the kernel matched",
          "nothing read; events the ring buffer had no room for are counted "
          "as lost, in FILE and in the summary",
          ["tests/integration/test_capture_faults.py::"
           "test_sigterm_mid_storm_writes_everything_read"]),
    Fault("a signal the moment tracing starts",
          "SIGINT or SIGTERM (3 times each) as soon as `trace` says "
          "\"tracing in\", as a script that waits for the line does",
          "exit 0, FILE whole with its summary (it used to end in "
          "\"Aborted!\", exit 1, most times; once a signal was lost and "
          "the run went on)",
          "-", ["tests/integration/test_cli.py::"
                "test_a_signal_right_after_the_banner_stops_cleanly"]),
    Fault("disk full mid-run",
          "-o FILE on a %d KiB tmpfs (a private mount namespace), %d SYNs to "
          "a closed port" % (FULL_DISK_KIB, FULL_DISK_SYNS),
          "one error line, exit 1; FILE holds only whole lines up to where "
          "the disk filled, every one passes the schema",
          "the events read after the disk filled: their number is in the "
          "error line",
          ["tests/integration/test_capture_faults.py::"
           "test_full_disk_mid_run_keeps_whole_lines"]),
    Fault("disk full inside a write",
          "os.write takes part of a batch, then fails with ENOSPC",
          "the file is cut back to its last whole line",
          "the lines not written, counted in the error line",
          ["tests/unit/test_capture.py::"
           "test_a_full_disk_leaves_whole_lines_and_counts_what_was_not_"
           "written"]),
    Fault("module load and unload during a trace",
          "nf_reject_ipv4 loaded before the trace (kprobe on nf_send_reset), "
          "%d connections REJECTed, the module unloaded, closed-port RSTs, "
          "the module loaded again, %d more REJECTed (stock kernels in the "
          "VM suite; this host's kernel has no modules)"
          % (MODULE_ROUNDS, MODULE_ROUNDS),
          "every RST before, between and after is reported, the REJECTs "
          "before and after the reload with the module's frames named "
          "(read before each unload); exit 0",
          "nothing read. Not named: frames of a module unloaded before "
          "rsttrace read their event (bcc names such addresses after the "
          "nearest symbol it still knows)",
          ["tests/integration/test_modules.py::"
           "test_module_unloaded_and_reloaded_during_a_trace"]),
    Fault("another user's symlink or file at an output name",
          "user nobody plants a symlink or file at FILE, at a directory on "
          "the way, at FILE.1, at FILE.1.gz, before the run or during it",
          "refused in one line (or left uncompressed, with a warning); what "
          "the link points to is byte-identical",
          "-", ["tests/integration/test_outfile_symlinks.py"]),
    Fault("two tracers at once",
          "two `trace` runs (one with --packets) next to another bcc "
          "program on the same tracepoints; a 3000-SYN burst",
          "each sees the same RSTs; each accounts for every RST of the burst "
          "(delivered + lost = sent)",
          "-", ["tests/integration/test_two_tracers.py"]),
]


def render():
    rows = ["| %s | %d | %s |" % (kind, n, what)
            for kind, (n, what) in FUZZ.items()]
    faults = ["| %s | %s | %s | %s | %s |" % (
        f.fault, f.injected, f.survived, f.lost,
        "<br>".join("`%s`" % t for t in f.tests)) for f in FAULTS]
    return "\n".join([
        "# Reliability",
        "",
        "What the test suite does to rsttrace that a live host, an incident "
        "or an attacker might, and what comes out. Generated from "
        "`tests/reliability.py`, whose numbers the tests named below "
        "assert; `tests/unit/test_reliability_doc.py` fails when this file "
        "and the table differ (regenerate: `.venv/bin/python "
        "tests/reliability.py > docs/reliability.md`).",
        "",
        "## Bad input to `rsttrace report`",
        "",
        "Property-based (hypothesis, derandomized: the same examples every "
        "run) in `%s`: each input is one file, or a rotated set, given to "
        "`rsttrace report`. Every one must end in a report (exit 0), or in "
        "one line `rsttrace: error: ...` and exit 1, with warnings on "
        "their own lines; never a traceback. Hand-written cases (a binary "
        "file, wrong types, a cut last line, an empty file, a lone "
        "surrogate, a cut gzip, a rotated set in a glob's order) are in %s."
        % (FUZZ_TEST, ", ".join("`%s`" % t for t in HAND_WRITTEN)),
        "",
        "| kind | inputs | what they are |",
        "|---|---|---|",
    ] + rows + [
        "| all | %d | |" % sum(n for n, _ in FUZZ.values()),
        "",
        "## Faults injected into a running tracer",
        "",
        "RSTs are provoked for real between network namespaces and traced "
        "by the real BPF program; \"lost\" means lost by rsttrace after it "
        "read an event (events the kernel's buffer had no room for are "
        "counted and reported as lost, never silently dropped).",
        "",
        "| fault | injected | what survived | what was lost | tests |",
        "|---|---|---|---|---|",
    ] + faults + [""])


if __name__ == "__main__":
    print(render(), end="")
