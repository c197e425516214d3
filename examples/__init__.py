"""Runnable examples of keyturn (see ``examples/README.md``)."""
