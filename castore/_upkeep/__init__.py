"""Keeping a store healthy: stats, verify, gc, prune, import and export, dictionaries, git."""
