"""A table built by scanning something (/proc, /run/netns), kept between
events and scanned again only when needed: when a key is missing and the
last scan is at least `min_age` seconds old, or when the table is older
than `max_age` (what it maps may have changed: a namespace inode or a
socket inode freed and reused). A storm of events costs a dict lookup
each, and at most one scan per `min_age`."""

import time


class Rescanned:
    def __init__(self, scan, min_age=1.0, max_age=10.0, clock=time.monotonic):
        self._scan = scan            # () -> dict
        self.min_age = min_age
        self.max_age = max_age
        self.clock = clock
        self.table = {}
        self.scanned_at = None
        self.scans = 0

    def rescan(self):
        self.table = self._scan()
        self.scanned_at = self.clock()
        self.scans += 1

    def get(self, key):
        now = self.clock()
        if self.scanned_at is None or now - self.scanned_at >= self.max_age:
            self.rescan()
        hit = self.table.get(key)
        if hit is None and now - self.scanned_at >= self.min_age:
            self.rescan()
            hit = self.table.get(key)
        return hit
