"""Helpers adapters compose: rate limiting, HTTP error classification, create-or-look-up."""
