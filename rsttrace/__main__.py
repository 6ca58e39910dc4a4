"""python -m rsttrace: the same as the rsttrace command."""
from .cli import main

main(prog_name="rsttrace")
