"""rsttrace.trace.ringbuf's walk over a ring buffer's records, on a ring laid
out in plain memory as the kernel lays out a BPF ring buffer map
(kernel/bpf/ringbuf.c: 8-byte headers with a busy and a discard bit, data
padded to 8 bytes, the data pages mapped twice in a row). The real map is
read in tests/integration (every streaming test goes through it)."""

import struct

import pytest

from rsttrace import abi
from rsttrace.trace import ringbuf
from rsttrace.trace.ringbuf import BUSY_BIT, DISCARD_BIT, HDR_SIZE, RingReader

SIZE = 4096


class Ring:
    """A ring of SIZE bytes with the kernel's layout; put() writes records
    as bpf_ringbuf_output() does (and its mirror, as the double mapping
    shows it)."""

    def __init__(self, start=0, size=SIZE):
        self.size = size
        self.consumer = bytearray(struct.pack("<Q", start))
        self.producer = bytearray(struct.pack("<Q", start))
        self.data = bytearray(2 * size)
        self.pos = start

    def _poke(self, off, raw):
        for i, b in enumerate(raw):
            o = (off + i) % self.size
            self.data[o] = self.data[o + self.size] = b

    def put(self, payload, busy=False, discard=False):
        length = len(payload) | (BUSY_BIT if busy else 0) | \
            (DISCARD_BIT if discard else 0)
        off = self.pos % self.size
        self._poke(off, struct.pack("<II", length, 0) + payload)
        self.pos += (len(payload) + HDR_SIZE + 7) // 8 * 8
        self.producer[:] = struct.pack("<Q", self.pos)
        return off

    def commit(self, off):
        """Clear the busy bit of the record at `off`."""
        length = struct.unpack_from("<I", self.data, off)[0] & ~BUSY_BIT
        self._poke(off, struct.pack("<I", length))

    def consumed(self):
        return struct.unpack("<Q", self.consumer)[0]

    def reader(self):
        return RingReader(self.consumer, self.producer, self.data,
                          self.size)


def event(i):
    """A raw event's bytes, told apart by its pid."""
    values = [b"" if f.endswith("s") else 0 for _, f in abi.RAW_FIELDS]
    values[[n for n, _ in abi.RAW_FIELDS].index("pid")] = i
    return abi.RAW_STRUCT.pack(*values).ljust(abi.RAW_SIZE, b"\0")


def pids(ring, on_event=None, **kw):
    got = []

    def take(ev):
        got.append(ev[abi.AT["pid"]])
        return on_event(ev) if on_event else 0
    reader = ring.reader()
    n = reader.consume(take, abi.unpack_from)
    reader.close()
    assert n == len(got)
    return got


def test_every_committed_record_in_order_then_none():
    ring = Ring()
    for i in range(5):
        ring.put(event(i))
    assert pids(ring) == [0, 1, 2, 3, 4]
    assert ring.consumed() == ring.pos
    assert pids(ring) == []


def test_a_record_across_the_end_reads_whole():
    start = SIZE - ringbuf.RECORD_SIZE // 2 // 8 * 8     # the 1st wraps
    ring = Ring(start)
    for i in range(3):
        ring.put(event(10 + i))
    assert pids(ring) == [10, 11, 12]
    assert ring.consumed() == ring.pos


def test_stops_at_a_record_still_being_written():
    ring = Ring()
    ring.put(event(1))
    busy = ring.put(event(2), busy=True)
    ring.put(event(3))
    assert pids(ring) == [1]
    assert ring.consumed() == ringbuf.RECORD_SIZE   # the busy one waits
    ring.commit(busy)
    assert pids(ring) == [2, 3]


def test_discarded_records_are_skipped_and_consumed():
    ring = Ring()
    ring.put(event(1), discard=True)
    ring.put(event(2))
    assert pids(ring) == [2]
    assert ring.consumed() == ring.pos


def test_a_nonzero_answer_stops_after_that_record():
    ring = Ring()
    for i in range(4):
        ring.put(event(i))
    assert pids(ring, lambda ev: -1 if ev[abi.AT["pid"]] == 1 else 0) == [0, 1]
    assert ring.consumed() == 2 * ringbuf.RECORD_SIZE
    assert pids(ring) == [2, 3]


def test_a_record_whose_handler_raised_is_consumed():
    ring = Ring()
    for i in range(3):
        ring.put(event(i))

    def boom(ev):
        if ev[abi.AT["pid"]] == 1:
            raise OSError("disk full")
        return 0
    reader = ring.reader()
    with pytest.raises(OSError):
        reader.consume(boom, abi.unpack_from)
    reader.close()
    assert ring.consumed() == 2 * ringbuf.RECORD_SIZE
    assert pids(ring) == [2]


def test_the_consumer_position_moves_during_a_long_batch():
    """The kernel gets room back every 64 records, not only at the end."""
    ring = Ring(size=1 << 16)
    seen = []
    for i in range(100):
        ring.put(event(i))

    def watch(ev):
        seen.append(ring.consumed())
        return 0
    pids(ring, watch)
    assert seen[:65] == [0] * 64 + [64 * ringbuf.RECORD_SIZE]
    assert ring.consumed() == ring.pos
