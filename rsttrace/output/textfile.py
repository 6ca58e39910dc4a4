"""The metrics as a node_exporter textfile: DIR/rsttrace.prom, replaced
whole every interval, for hosts where node_exporter's textfile collector is
how metrics leave the machine.

Written the way `-o FILE` is (rsttrace.output.outfile): a hidden temporary
file beside it (not *.prom, so node_exporter never reads half a file),
renamed over it; the path walked by rsttrace.output.safe_open, so another
user's symlink or file planted in a world-writable directory is refused,
never written through. The file is made readable by all (0644):
node_exporter rarely runs as root. It holds only rsttrace's own families
(no process_* metrics, which node_exporter exports for itself).
"""

import os

from prometheus_client import CollectorRegistry, generate_latest

from rsttrace.errors import RsttraceError
from rsttrace.output.outfile import OutputFile

NAME = "rsttrace.prom"
MODE = 0o644


class Textfile:
    def __init__(self, directory, collector):
        self.path = os.path.join(directory, NAME)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(collector)

    def write(self):
        """Replace the file with the metrics as they are now; raises
        RsttraceError (one line) when it cannot, leaving the old file."""
        text = generate_latest(self.registry).decode("utf-8")
        out = OutputFile(self.path)
        stream = out.open()
        try:
            if out.tmp and out.target.st is None:   # a new file
                os.fchmod(stream.fileno(), MODE)
            stream.write(text)
            out.commit()
        except OSError as e:
            out.discard_quietly()
            raise RsttraceError("cannot write %s (%s)"
                                % (self.path, e.strerror or e),
                                "free space there, or choose another "
                                "--textfile-dir")
        except BaseException:
            out.discard_quietly()
            raise
