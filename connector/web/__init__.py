"""The web side: the Flask app, webhook intake, health endpoints and the gunicorn runner.

It writes only to the ledger and never imports the delivery side or an adapter.
"""
