"""rsttrace's command line (click): one module per command.

    trace.py      trace          scenarios.py  scenarios list/run, demo
    doctor.py     doctor         causes.py     causes
    report.py     report         matrix.py     matrix
    convert.py    convert
    exporter.py   exporter       (Prometheus metrics, a node_exporter textfile)
"""

import click

from rsttrace import __version__
from rsttrace.cli import (causes, convert, doctor, exporter, matrix,
                          report, scenarios, trace)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(version=__version__, prog_name="rsttrace")
def main():
    """Which kernel path sent or received a TCP RST, in what socket state,
    for which connection and process, and why."""


for command in (trace.trace, doctor.doctor, scenarios.scenarios,
                scenarios.demo, causes.causes, matrix.matrix, report.report,
                convert.convert, exporter.exporter):
    main.add_command(command)

if __name__ == "__main__":
    main()
