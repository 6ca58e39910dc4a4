"""What every command shares: how an error ends it, option checks."""

import sys

import click

from rsttrace.trace.hooks import MODES

MODE_CHOICE = click.Choice(("auto",) + MODES)


def fail(err):
    """One line on stderr saying what is wrong and how to fix it, and the
    error's exit status."""
    click.echo("rsttrace: error: %s" % err, err=True)
    sys.exit(getattr(err, "exit_code", 1))


def positive(ctx, param, value):
    """A click callback: a number above zero (click 7, Debian 11's, has
    no min_open)."""
    if value is not None and value <= 0:
        raise click.BadParameter("%s must be above 0" % value,
                                 param_hint="--" + param.name)
    return value
