"""``python -m eohub.accounting``: the same as the ``eohub-accounting`` command."""

from eohub.accounting.app import main

main()
