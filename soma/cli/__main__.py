"""``python -m soma.cli``: the ``soma`` command without relying on the console script."""

from soma.cli import main

main()
