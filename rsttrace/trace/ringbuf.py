"""The BPF ring buffer read straight from its memory, a batch at a time.

bcc (through libbpf) delivers each record with a ctypes callback, which
costs more than everything else rsttrace does with an event. The ring
buffer's memory layout is kernel ABI (include/uapi/linux/bpf.h, the
BPF_RINGBUF_* constants; kernel/bpf/ringbuf.c; libbpf's ringbuf.c is the
reference reader), so rsttrace maps it and walks the records itself:

  page 0 (read-write)   consumer position (u64), which the reader advances
  page 1 (read-only)    producer position (u64)
  pages 2...            the data, mapped twice in a row so that a record
                        that wraps around the end reads as one piece

Each record is an 8-byte header (u32 length with a busy and a discard bit,
u32 page offset) and the data, padded to 8 bytes.

    reader = RingReader.of_map(map_fd, size)
    reader.wait(100)                       # until woken or 100 ms
    reader.consume(on_event, unpack)       # on_event(unpack(view, offset))

Memory order: the kernel publishes a record by clearing its busy bit with a
release store (bpf_ringbuf_commit()); the reader must load the header with
acquire semantics before the data. On x86-64 every load is an acquire load
(TSO), so plain reads are exact; on other CPUs rsttrace uses libbpf's reader
instead (FAST_READER).
"""

import mmap
import platform
import select

from rsttrace import abi

BUSY_BIT = 1 << 31
DISCARD_BIT = 1 << 30
FLAG_BITS = BUSY_BIT | DISCARD_BIT
HDR_SIZE = 8
# The room one event takes in the ring (header, data, padding).
RECORD_SIZE = (HDR_SIZE + abi.RAW_SIZE + 7) // 8 * 8
FAST_READER = platform.machine() in ("x86_64", "AMD64", "i686", "i386")


class RingReader:
    """Reads a ring buffer of `size` bytes (a power of two: the map's
    max_entries) laid out as above: `consumer` and `producer` are its two
    positions (writable buffers of a u64 each), `data` its data twice over;
    `fd` (the map's) is what wait() waits on. open_reader() maps a bcc
    ring buffer table so."""

    def __init__(self, consumer, producer, data, size, fd=None):
        self.size = size
        self.mask = size - 1
        self.cons = memoryview(consumer).cast("B").cast("Q")
        self.prod = memoryview(producer).cast("B").cast("Q")
        self.data = memoryview(data)
        self.lengths = self.data.cast("B").cast("I")
        self._mappings = []
        self._epoll = None
        if fd is not None:
            self._epoll = select.epoll()
            self._epoll.register(fd, select.EPOLLIN)

    @classmethod
    def of_map(cls, map_fd, size):
        page = mmap.PAGESIZE
        consumer = mmap.mmap(map_fd, page, mmap.MAP_SHARED,
                             mmap.PROT_READ | mmap.PROT_WRITE, offset=0)
        producer = mmap.mmap(map_fd, page + 2 * size, mmap.MAP_SHARED,
                             mmap.PROT_READ, offset=page)
        view = memoryview(producer)
        reader = cls(memoryview(consumer)[:8], view[:8], view[page:], size,
                     map_fd)
        reader._mappings = [view, consumer, producer]
        return reader

    def wait(self, timeout_ms):
        """Until the kernel wakes the reader or `timeout_ms` passes."""
        self._epoll.poll(timeout_ms / 1000.0)

    def pending(self):
        """Bytes written and not yet consumed."""
        return self.prod[0] - self.cons[0]

    def consume(self, on_event, unpack):
        """Hand every complete record to on_event(unpack(data, offset)), in
        order, until the ring is empty or on_event returns non-zero (that
        record is consumed; rsttrace.trace.session.STOP, which also ends
        libbpf's poll). Returns the number of records handed on."""
        cons = self.cons
        lengths, data, mask = self.lengths, self.data, self.mask
        pos = cons[0]
        n = 0
        try:
            while True:
                prod = self.prod[0]
                if pos >= prod:
                    return n
                while pos < prod:
                    off = pos & mask
                    length = lengths[off >> 2]
                    if length & FLAG_BITS:
                        if length & BUSY_BIT:   # not committed yet
                            return n
                        pos += ((length & ~FLAG_BITS) + HDR_SIZE + 7) & ~7
                        continue                # discarded
                    pos += (length + HDR_SIZE + 7) & ~7
                    n += 1
                    if on_event(unpack(data, off + HDR_SIZE)):
                        return n
                    if not n & 63:          # room for the kernel, now
                        cons[0] = pos       # and then
        finally:
            cons[0] = pos   # all handed on, even when on_event raised

    def close(self):
        for view in (self.lengths, self.data, self.prod, self.cons):
            view.release()
        for m in self._mappings:
            if isinstance(m, memoryview):
                m.release()
            else:
                m.close()
        if self._epoll is not None:
            self._epoll.close()


def open_reader(table):
    """A RingReader for a bcc ring buffer table, or None where the fast
    reader does not apply (see FAST_READER)."""
    if not FAST_READER:
        return None
    return RingReader.of_map(table.map_fd, _max_entries(table.map_fd))


def _max_entries(map_fd):
    """The map's size in bytes (max_entries), from its fdinfo."""
    with open("/proc/self/fdinfo/%d" % map_fd) as f:
        for line in f:
            if line.startswith("max_entries:"):
                return int(line.split()[1])
    raise OSError("no max_entries in the ring buffer map's fdinfo")

