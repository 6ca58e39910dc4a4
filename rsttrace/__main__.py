"""python -m rsttrace: the same as the rsttrace command."""
from rsttrace.cli import main

main(prog_name="rsttrace")
