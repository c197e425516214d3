"""The reports example: a downstream service that verifies notes tokens via JWKS.

Run it with ``make example-reports`` (or ``python -m examples.reports --help``).
"""
