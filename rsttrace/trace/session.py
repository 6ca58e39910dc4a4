"""A tracing session: probe -> event -> attribution -> output, until told
to stop (duration, count, SIGINT/SIGTERM)."""

import signal
import sys
import time

from rsttrace.attribution import attribute
from rsttrace.kernel import features
from rsttrace.kernel.reasons import ReasonNames
from rsttrace.output.summary import Summary
from rsttrace.trace.decode import WHO_FIELDS, Decoder

# libbpf's ring buffer poll consumes until the buffer is empty: in a storm
# that outruns us it would never return, and neither Ctrl-C, SIGTERM,
# --duration, --count, the flush nor the loss report would get their turn.
# A callback that returns a negative number makes it return at once (the
# event in hand is already consumed, and recorded). The perf buffer reads
# what was there when it started, and ignores the value.
STOP = -1
UNSET = object()
# who is behind an event (decode.WHO_FIELDS) when no one asked
NO_WHO = (None,) * len(WHO_FIELDS)
POLL_BUDGET_S = 0.1
CLOCK_EVERY = 64


class Session:
    def __init__(self, tracer, writer=None, summary=False, count=None,
                 duration=None, on_record=None, warn=None, enricher=None):
        self.tracer = tracer
        # who is behind each RST (rsttrace.context.enrich.Enricher), or None
        self.enricher = enricher
        self.writer = writer
        self.summary = Summary() if summary else None
        self.count = count
        self._limit = float("inf") if count is None else count
        self.duration = duration
        self.on_record = on_record
        self.warn = warn or (lambda m: print("rsttrace: " + m,
                                             file=sys.stderr, flush=True))
        self.decoder = None
        self.seen = 0
        self.lost_reported = 0
        self.missing_reported = 0
        self.stopping = False
        self.on_tick = None          # called about once a second
        self.before_close = None     # called after the last drain
        self.failed = None           # what _raw raised, raised again later
        self._polling = False        # run() polls (drains run to the end)
        self._poll_until = None      # when the poll in progress returns
        self._old_handlers = None    # while catch_signals() holds them
        self._line = UNSET           # see _line_writer()

    def start(self):
        self.tracer.start(self._raw)
        kbtf = self.tracer.kbtf
        tp_format = features.tracepoint_format("tcp", "tcp_send_reset")
        self.decoder = Decoder(ReasonNames.for_kernel(kbtf, tp_format),
                               features.hz(), self.tracer.stack,
                               self.tracer.ksym, self.tracer.refresh_symbols,
                               attribute)
        return self

    def _raw(self, ev):
        """One event, from bcc's ring or perf buffer callback (or
        rsttrace.trace.ringbuf's reader). Returns STOP when the poll in
        progress should return now (see POLL_BUDGET_S)."""
        # Called by bcc from a ctypes callback, which would print and then
        # swallow any exception (a full disk, a bug): it is kept instead and
        # raised again by _raise_failure() once the poll returns.
        if self.failed is not None:
            return STOP
        try:
            if self.seen < self._limit:
                # probe -> event -> attribution (the decoder) -> output
                layout, values = self.decoder.event(ev)
                who = NO_WHO if self.enricher is None else \
                    self.enricher.who(layout.shape, ev)
                self.seen += 1
                line = self._line
                if line is UNSET:
                    line = self._line = self._line_writer()
                if line is not None:
                    line(layout, values, who)
                else:
                    self._record(layout.record(values, who))
        except BaseException as e:
            self.failed = e
            return STOP
        if self._polling:
            if self.stopping or self.seen >= self._limit:
                return STOP
            # the budget starts with the first events, not with the wait;
            # the clock is read every CLOCK_EVERY events (a read per event
            # costs more than the rest of this function)
            if not self.seen % CLOCK_EVERY:
                now = time.monotonic()
                if self._poll_until is None:
                    self._poll_until = now + POLL_BUDGET_S
                elif now >= self._poll_until:
                    return STOP
        return 0

    def _line_writer(self):
        """The writer's event_of() when the lines are all an event is for
        (no summary, no on_record, a writer that writes from an event's
        values: rsttrace.output.writers.JsonWriter), else None: the events
        go through _record(). Decided at the first event, once the writer
        is set."""
        if self.summary is None and self.on_record is None:
            return getattr(self.writer, "event_of", None)
        return None

    def _record(self, record):
        if self.summary is not None:
            self.summary.add(record)
        if self.on_record is not None:
            self.on_record(record)
        if self.writer is not None:
            self.writer.event(record)

    def _raise_failure(self):
        if self.failed is not None:
            failed, self.failed = self.failed, None
            raise failed

    def check_lost(self):
        missing = self.decoder.missing_stacks if self.decoder else 0
        if missing > self.missing_reported:
            self.warn("%d events without their kernel stack (the kernel's "
                      "stack table dropped it before it was read), %d in all"
                      % (missing - self.missing_reported, missing))
            self.missing_reported = missing
        matched, lost = self.tracer.counts()
        if lost > self.lost_reported:
            delta = lost - self.lost_reported
            self.lost_reported = lost
            self.warn("lost %d events (%s), %d in all"
                      % (delta, self.tracer.loss_cause(), lost))
            if self.writer is not None:
                self.writer.lost(delta, lost)
        if self.summary is not None:
            self.summary.lost = lost
            self.summary.kernel_events = matched

    def _stop(self, signum, frame):
        self.stopping = True

    def catch_signals(self):
        """From now on SIGINT and SIGTERM end the session cleanly (once
        run() gets to it) instead of interrupting it; run() puts the old
        handlers back. The CLI calls this before it says it is tracing,
        so that a Ctrl-C right after that still ends with the summary."""
        if self._old_handlers is None:
            self._old_handlers = {s: signal.signal(s, self._stop)
                                  for s in (signal.SIGINT, signal.SIGTERM)}

    def _release_signals(self):
        for s, h in (self._old_handlers or {}).items():
            signal.signal(s, h)
        self._old_handlers = None

    def run(self):
        """Poll until duration, count or a signal; then finish()."""
        self.catch_signals()
        deadline = (time.monotonic() + self.duration
                    if self.duration else None)
        next_tick = time.monotonic() + 1
        try:
            while not self.stopping:
                self._polling, self._poll_until = True, None
                try:
                    self.tracer.poll(100)
                finally:
                    self._polling = False       # drains run to the end
                self._raise_failure()
                self.check_lost()
                self.tracer.check_modules()     # says which hooks came
                if self.writer is not None:
                    self.writer.flush()
                if self.on_tick and time.monotonic() >= next_tick:
                    next_tick += 1
                    self.on_tick()
                if self.count is not None and self.seen >= self.count:
                    break
                if deadline and time.monotonic() >= deadline:
                    break
        finally:
            self.finish()
            self._release_signals()

    def drain(self):
        self.tracer.drain()
        self._raise_failure()
        self.check_lost()
        self.tracer.check_modules()
        if self.writer is not None:
            self.writer.flush()

    def finish(self):
        if self.tracer.bpf is None:
            return
        try:
            # Probes off first, so that the last drain gets every event and
            # the counts below are final: an event made between the drain
            # and the count would be counted but never delivered.
            self.tracer.detach()
            self.drain()
            if self.summary is not None and self.writer is not None:
                self.writer.summary(self.summary)
            if self.before_close is not None:
                self.before_close()
        finally:
            self.tracer.close()
