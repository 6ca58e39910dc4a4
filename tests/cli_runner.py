"""click's CliRunner with standard error kept apart from standard output,
on the click Debian ships (8.1: mix_stderr=False asks for it) and on later
ones (8.2 on: always apart, and mix_stderr is gone)."""

from click.testing import CliRunner


def cli_runner():
    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()
