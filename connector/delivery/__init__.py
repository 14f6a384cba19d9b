"""The delivery side: relay, queue, and the pipeline that filters, matches, renders and writes.

It reads what the web side stored in the ledger and never imports the web side.
"""
