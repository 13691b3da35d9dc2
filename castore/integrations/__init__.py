"""Integrations with other tools: HTTP-level recording (``http``: every httpx and httpx2
request answered from the store) and castore under VCR.py (``vcr``: cassettes whose
bodies live in the store). Modules here use only castore's public names (``castore``,
``castore.errors``), as any user's code would.
"""
