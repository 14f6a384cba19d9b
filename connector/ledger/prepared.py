"""Inserts compiled once per database and run on the DBAPI connection (the webhook's hot path)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert

__all__ = ["PreparedInsert"]


class PreparedInsert:
    """An INSERT of `columns` compiled for one dialect, their bind conversions looked up once.

    `parameters` turns a row of Python values (aware datetimes, dicts for JSON columns) into what
    the DBAPI driver takes, exactly as SQLAlchemy would convert them, so rows written here read
    back through SQLAlchemy like any other.
    """

    def __init__(self, statement: Insert, dialect: Dialect, columns: Sequence[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(columns))
        self.sql = compiled.string
        self._order: Sequence[str] | None = (
            list(compiled.positiontup or ()) if compiled.positional else None
        )
        expected = set(self._order if self._order is not None else compiled.binds)
        if expected != set(columns):  # e.g. a column default SQLAlchemy would fill in
            raise ValueError(f"the insert binds {sorted(expected)}, not {sorted(columns)}")
        self._convert: dict[str, Callable[[Any], Any]] = {}
        for key in columns:
            column = statement.table.columns[key]
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self._convert[column.key] = process

        #: Per bound column in the driver's order: its key and its conversion, if any.
        self._steps: list[tuple[str, Callable[[Any], Any] | None]] = [
            (key, self._convert.get(key)) for key in (self._order or columns)
        ]

    def convert(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Some of the columns' values in the driver's form, for `parameters`' `converted`:
        values that many rows share (a batch's timestamp, a constant) are so converted once."""
        return {
            key: value if (step := self._convert.get(key)) is None else step(value)
            for key, value in values.items()
        }

    def parameters(
        self, row: Mapping[str, Any], converted: Mapping[str, Any] | None = None
    ) -> Sequence[Any] | dict[str, Any]:
        """`row` converted column by column, positional or named as the driver expects.

        Columns in `converted` (from `convert`) are taken from there as they are; `row` holds
        the others.
        """
        done = converted or {}
        values = [
            done[key] if key in done else row[key] if step is None else step(row[key])
            for key, step in self._steps
        ]
        if self._order is None:
            return dict(zip((key for key, _ in self._steps), values, strict=True))
        return values
