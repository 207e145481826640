"""``python -m agentfn``: the same command line as the ``agentfn`` script."""

from agentfn.functions.local.cli import main

main()
