"""The notes example: browser pages on sessions, a JSON API on bearer tokens.

Run it with ``make example-notes`` (or ``python -m examples.notes --help``).
"""
