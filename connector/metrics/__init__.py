"""Prometheus metrics: what the web side and the worker count, and what the ledger shows."""
