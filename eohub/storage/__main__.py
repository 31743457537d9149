"""``python -m eohub.storage``: the same as the ``eohub-storage-sampler`` command."""

from eohub.storage.app import main

if __name__ == "__main__":
    main()
