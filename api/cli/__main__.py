"""``python -m api.cli``: the ``faddl`` command."""

from api.cli import main

main()
