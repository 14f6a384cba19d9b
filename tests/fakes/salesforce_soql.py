"""The SOQL subset the Salesforce test server understands: tokenizer, parser, query tree."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.fakes.salesforce_errors import ApiError, malformed_query, unsupported
from tests.fakes.salesforce_schema import parse_datetime

__all__ = [
    "BoolOp",
    "Comparison",
    "Not",
    "OrderItem",
    "SoqlLiteral",
    "SoqlParser",
    "SoqlQuery",
    "like_to_regex",
    "tokenize_soql",
    "wildcard_regex",
]


@dataclass
class _Token:
    kind: str
    value: str
    pos: int

    def is_kw(self, *words: str) -> bool:
        return self.kind == "ident" and self.value.upper() in words


_SOQL_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<colon>:\S*)
    """,
    re.VERBOSE,
)
_SOQL_STRING_ESCAPES = {
    "'": "'",
    '"': '"',
    "\\": "\\",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    "_": "\\_",
    "%": "\\%",
}
_DATE_LITERALS = {
    "YESTERDAY",
    "TODAY",
    "TOMORROW",
    "LAST_WEEK",
    "THIS_WEEK",
    "NEXT_WEEK",
    "LAST_MONTH",
    "THIS_MONTH",
    "NEXT_MONTH",
    "LAST_90_DAYS",
    "NEXT_90_DAYS",
    "THIS_QUARTER",
    "LAST_QUARTER",
    "NEXT_QUARTER",
    "THIS_YEAR",
    "LAST_YEAR",
    "NEXT_YEAR",
    "THIS_FISCAL_QUARTER",
    "THIS_FISCAL_YEAR",
}
_SOQL_UNSUPPORTED_CLAUSES = {
    "GROUP": "GROUP BY",
    "HAVING": "HAVING",
    "WITH": "WITH clauses",
    "FOR": "FOR VIEW/REFERENCE/UPDATE",
    "USING": "USING SCOPE",
    "TYPEOF": "TYPEOF",
    "INCLUDES": "INCLUDES (multi-select picklists)",
    "EXCLUDES": "EXCLUDES (multi-select picklists)",
    "ALL": "ALL ROWS",
}


def tokenize_soql(text: str) -> list[_Token]:
    """The tokens of SOQL `text`; raises ApiError ``MALFORMED_QUERY`` for a stray character."""
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _SOQL_TOKEN_RE.match(text, pos)
        if not match:
            if text[pos] == "'":
                raise malformed_query(f"unterminated string literal at position {pos}: {text}")
            raise malformed_query(
                f"\n{text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos + 1}\n"
                f"unexpected token: '{text[pos]}'"
            )
        kind = match.lastgroup or ""
        if kind == "colon":
            raise unsupported(f"bind variables ({match.group()})")
        if kind != "ws":
            tokens.append(_Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _unescape_soql_string(literal: str) -> str:
    body = literal[1:-1]
    out = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            escaped = body[index + 1]
            if escaped not in _SOQL_STRING_ESCAPES:
                raise malformed_query(
                    f"Invalid string literal '{body}'. Illegal character sequence "
                    f"'\\{escaped}' in string literal."
                )
            out.append(_SOQL_STRING_ESCAPES[escaped])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


@dataclass
class SoqlLiteral:
    """A literal in a WHERE clause, with its kind and the text it was written as."""

    kind: str  # string, number, bool, null, date, datetime
    value: Any
    raw: str


@dataclass
class Comparison:
    """``path op values`` in a WHERE clause."""

    path: str
    op: str  # = != < <= > >= LIKE IN NOTIN
    values: list[SoqlLiteral]


@dataclass
class BoolOp:
    """``AND`` / ``OR`` of the conditions in `items`."""

    op: str  # AND / OR
    items: list[Any]


@dataclass
class Not:
    """``NOT item`` in a WHERE clause."""

    item: Any


@dataclass
class OrderItem:
    """One ``ORDER BY`` entry."""

    path: str
    descending: bool
    nulls_first: bool | None


@dataclass
class SoqlQuery:
    """A parsed ``SELECT``: fields, sObject, WHERE tree, ORDER BY, LIMIT, OFFSET."""

    fields: list[str]
    sobject: str
    where: Any | None
    order: list[OrderItem]
    limit: int | None
    offset: int


class SoqlParser:
    """Recursive-descent parser for the supported SOQL subset."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize_soql(text)
        self.index = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def next(self) -> _Token:
        token = self.peek()
        if token is None:
            raise malformed_query(f"unexpected end of query: {self.text}")
        self.index += 1
        return token

    def error(self, token: _Token | None) -> ApiError:
        if token is None:
            return malformed_query(f"unexpected end of query: {self.text}")
        return malformed_query(
            f"\n{self.text}\n{' ' * token.pos}^\nERROR at Row:1:Column:{token.pos + 1}\n"
            f"unexpected token: '{token.value}'"
        )

    def expect_kw(self, word: str) -> None:
        token = self.peek()
        if token is None or not token.is_kw(word):
            raise self.error(token)
        self.index += 1

    def expect_punct(self, char: str) -> None:
        token = self.peek()
        if token is None or token.kind != "punct" or token.value != char:
            raise self.error(token)
        self.index += 1

    def check_unsupported(self, token: _Token | None) -> None:
        if token is not None and token.kind == "ident":
            word = token.value.upper()
            if word in _SOQL_UNSUPPORTED_CLAUSES:
                raise unsupported(_SOQL_UNSUPPORTED_CLAUSES[word])

    def parse(self) -> SoqlQuery:
        self.expect_kw("SELECT")
        fields = self.parse_field_list()
        self.expect_kw("FROM")
        sobject_token = self.next()
        if sobject_token.kind != "ident" or "." in sobject_token.value:
            raise self.error(sobject_token)
        token = self.peek()
        if token is not None and token.kind == "punct" and token.value == ",":
            raise unsupported("multiple objects in FROM")
        if (
            token is not None
            and token.kind == "ident"
            and not token.is_kw("WHERE", "ORDER", "LIMIT", "OFFSET")
            and token.value.upper() not in _SOQL_UNSUPPORTED_CLAUSES
        ):
            raise unsupported(f"object aliases in FROM ({token.value})")
        where = None
        if token is not None and token.is_kw("WHERE"):
            self.index += 1
            where = self.parse_expression()
        order: list[OrderItem] = []
        token = self.peek()
        self.check_unsupported(token)
        if token is not None and token.is_kw("ORDER"):
            self.index += 1
            self.expect_kw("BY")
            order = self.parse_order()
        limit = None
        offset = 0
        token = self.peek()
        self.check_unsupported(token)
        if token is not None and token.is_kw("LIMIT"):
            self.index += 1
            limit = self.parse_int()
        token = self.peek()
        if token is not None and token.is_kw("OFFSET"):
            self.index += 1
            offset = self.parse_int()
            if offset > 2000:
                raise ApiError(
                    400, "NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000"
                )
        token = self.peek()
        self.check_unsupported(token)
        if token is not None:
            raise self.error(token)
        return SoqlQuery(fields, sobject_token.value, where, order, limit, offset)

    def parse_int(self) -> int:
        token = self.next()
        if token.kind != "number" or not token.value.isdigit():
            raise self.error(token)
        return int(token.value)

    def parse_field_list(self) -> list[str]:
        fields: list[str] = []
        while True:
            token = self.next()
            if token.kind == "punct" and token.value == "(":
                raise unsupported("sub-queries (parent-to-child relationship queries)")
            self.check_unsupported(token)
            if token.kind != "ident" or token.is_kw("FROM"):
                raise self.error(token)
            following = self.peek()
            if following is not None and following.kind == "punct" and following.value == "(":
                raise unsupported(f"functions or aggregates in SELECT ({token.value}(...))")
            fields.append(token.value)
            following = self.peek()
            if following is not None and following.kind == "punct" and following.value == ",":
                self.index += 1
                continue
            return fields

    def parse_order(self) -> list[OrderItem]:
        items: list[OrderItem] = []
        while True:
            token = self.next()
            if token.kind != "ident":
                raise self.error(token)
            descending = False
            nulls_first: bool | None = None
            following = self.peek()
            if following is not None and following.is_kw("ASC", "DESC"):
                descending = following.value.upper() == "DESC"
                self.index += 1
                following = self.peek()
            if following is not None and following.is_kw("NULLS"):
                self.index += 1
                which = self.next()
                if not which.is_kw("FIRST", "LAST"):
                    raise self.error(which)
                nulls_first = which.value.upper() == "FIRST"
            items.append(OrderItem(token.value, descending, nulls_first))
            following = self.peek()
            if following is not None and following.kind == "punct" and following.value == ",":
                self.index += 1
                continue
            return items

    def parse_expression(self) -> Any:
        items = [self.parse_unary()]
        operator: str | None = None
        while True:
            token = self.peek()
            if token is None or not token.is_kw("AND", "OR"):
                break
            word = token.value.upper()
            if operator is not None and word != operator:
                # SOQL needs parentheses when AND and OR are mixed on one level.
                raise self.error(token)
            operator = word
            self.index += 1
            items.append(self.parse_unary())
        if operator is None:
            return items[0]
        return BoolOp(operator, items)

    def parse_unary(self) -> Any:
        token = self.peek()
        if token is not None and token.is_kw("NOT"):
            self.index += 1
            return Not(self.parse_unary())
        if token is not None and token.kind == "punct" and token.value == "(":
            self.index += 1
            expression = self.parse_expression()
            self.expect_punct(")")
            return expression
        return self.parse_comparison()

    def parse_comparison(self) -> Comparison:
        token = self.next()
        if token.kind != "ident" or token.is_kw("AND", "OR", "NOT"):
            raise self.error(token)
        following = self.peek()
        if following is not None and following.kind == "punct" and following.value == "(":
            raise unsupported(f"functions in WHERE ({token.value}(...))")
        operator_token = self.next()
        self.check_unsupported(operator_token)
        if operator_token.kind == "op":
            operator = "!=" if operator_token.value == "<>" else operator_token.value
            return Comparison(token.value, operator, [self.parse_literal()])
        if operator_token.is_kw("LIKE"):
            return Comparison(token.value, "LIKE", [self.parse_literal()])
        if operator_token.is_kw("NOT"):
            self.expect_kw("IN")
            return Comparison(token.value, "NOTIN", self.parse_list())
        if operator_token.is_kw("IN"):
            return Comparison(token.value, "IN", self.parse_list())
        raise self.error(operator_token)

    def parse_list(self) -> list[SoqlLiteral]:
        self.expect_punct("(")
        token = self.peek()
        if token is not None and token.is_kw("SELECT"):
            raise unsupported("semi-join sub-queries (IN (SELECT ...))")
        values = [self.parse_literal()]
        while True:
            token = self.next()
            if token.kind == "punct" and token.value == ")":
                return values
            if token.kind == "punct" and token.value == ",":
                values.append(self.parse_literal())
                continue
            raise self.error(token)

    def parse_literal(self) -> SoqlLiteral:
        token = self.next()
        if token.kind == "string":
            return SoqlLiteral("string", _unescape_soql_string(token.value), token.value)
        if token.kind == "number":
            return SoqlLiteral("number", float(token.value), token.value)
        if token.kind == "date":
            return SoqlLiteral("date", parse_datetime(token.value), token.value)
        if token.kind == "datetime":
            return SoqlLiteral("datetime", parse_datetime(token.value), token.value)
        if token.kind == "ident":
            word = token.value.upper()
            if word in ("TRUE", "FALSE"):
                return SoqlLiteral("bool", word == "TRUE", token.value)
            if word == "NULL":
                return SoqlLiteral("null", None, token.value)
            if word in _DATE_LITERALS or word.startswith(("LAST_N_", "NEXT_N_", "N_")):
                raise unsupported(f"date literals ({token.value})")
        raise self.error(token)


def wildcard_regex(pattern: str, wildcards: Mapping[str, str]) -> str:
    """`pattern` as a regular expression: a backslash escapes the next character, `wildcards`
    maps wildcard characters to their regex (``%`` to ``.*``), everything else is literal."""
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        out.append(wildcards.get(char, re.escape(char)))
        index += 1
    return "".join(out)


def like_to_regex(pattern: str) -> re.Pattern[str]:
    """The regex of a SOQL ``LIKE`` pattern (``%`` any run, ``_`` one character)."""
    return re.compile(wildcard_regex(pattern, {"%": ".*", "_": "."}), re.IGNORECASE | re.DOTALL)
