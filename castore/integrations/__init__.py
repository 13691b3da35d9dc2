"""Integrations with other tools, named by users in their conftest.py.

Reserved for the httpx transport and the VCR.py persister. Modules here use only castore's
public names (``castore``, ``castore.errors``), as any user's code would.
"""
