"""The ledger: tables, SQL engines, queries and migrations for every accepted call and delivery."""
