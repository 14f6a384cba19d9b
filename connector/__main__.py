"""``python -m connector`` is ``sipgate-crm``."""

from connector.cli import main

main()
