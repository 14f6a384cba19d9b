"""Configuration: typed sections, the delivery policy, and loading YAML with ``${ENV}`` secrets."""
