"""`rsttrace causes`: every cause, what it means, what to do."""

import click

from rsttrace.causes import CAUSES, causes_markdown
from rsttrace.output.tables import table


@click.command()
@click.option("--markdown", is_flag=True, help="As docs/causes.md.")
def causes(markdown):
    """The causes rsttrace attributes RSTs to, and what to do about each."""
    if markdown:
        from rsttrace.lab.catalogue import CATALOGUE
        click.echo(causes_markdown(CATALOGUE), nl=False)
        return
    click.echo(table([(c, k.what, k.fix) for c, k in CAUSES.items()],
                     ["cause", "what happened", "what to do"], [None, 50, 50]))
