"""The README's FastAPI quick start (``app.py``), kept verbatim and tested."""
