"""The jobsvc benchmark suite: ``python -m bench`` (``--small`` for the CI smoke run)."""
