"""``python -m eohub.accounting``: the same as the ``eohub-accounting`` command."""

from eohub.accounting.app import main

if __name__ == "__main__":  # the writer process imports this module too
    main()
