"""The SOSL subset the Salesforce test server understands: FIND parser and term matching."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from tests.fakes.salesforce_errors import UNSUPPORTED, ApiError
from tests.fakes.salesforce_soql import SoqlParser, SoqlQuery, tokenize_soql, wildcard_regex

__all__ = [
    "SOSL_SCOPES",
    "ReturningSpec",
    "SoslQuery",
    "parse_sosl",
    "phone_alternatives",
    "returning_query",
    "search_terms",
    "text_expression_matches",
]

_SOSL_RESERVED = set("?&|!{}[]()^~*:\\\"'+-")
# Reserved characters that are *operators* in a SOSL search query and therefore legal
# unescaped: wildcards, phrase quotes and grouping parentheses.
_SOSL_OPERATOR_CHARS = set('*?"()')
SOSL_SCOPES = {"ALL", "NAME", "EMAIL", "PHONE", "SIDEBAR"}


@dataclass
class _STerm:
    text: str
    phrase: bool


@dataclass
class _SBool:
    op: str  # AND / OR
    items: list[Any]


@dataclass
class _SNot:
    item: Any


@dataclass
class ReturningSpec:
    """One ``RETURNING sobject(inner)`` entry (`inner` None without parentheses)."""

    sobject: str
    inner: str | None


@dataclass
class SoslQuery:
    """A parsed ``FIND``: search expression, ``IN ... FIELDS`` scope, RETURNING, LIMIT."""

    expression: Any
    scope: str
    returning: list[ReturningSpec]
    limit: int | None


def _sosl_error(text: str, pos: int, detail: str) -> ApiError:
    # Mirrors Salesforce's parser message, e.g.
    #   FIND {John|jane} RETURNING Contact / ^ / ERROR at Row:1:Column:10 /
    #   line 1:10 mismatched character '|' expecting '}'
    return ApiError(
        400,
        "MALFORMED_SEARCH",
        f"\n{text}\n{' ' * pos}^\nERROR at Row:1:Column:{pos}\nline 1:{pos} {detail}",
    )


def _scan_sosl_term(text: str, start: int) -> tuple[list[tuple[str, str]], int]:
    """Scan the search query between braces; ``start`` is the index after ``{``.

    Returns ``(tokens, index_of_closing_brace)``; tokens are ``("word", text)``,
    ``("phrase", text)``, ``("lparen", "(")`` and ``("rparen", ")")``.  Backslash escapes
    any character; an unescaped reserved character that isn't a SOSL operator raises
    ``MALFORMED_SEARCH`` like Salesforce ("mismatched character 'X' expecting '}'").
    """
    tokens: list[tuple[str, str]] = []
    word: list[str] = []
    pos = start

    def flush() -> None:
        if word:
            tokens.append(("word", "".join(word)))
            word.clear()

    while pos < len(text):
        char = text[pos]
        if char == "\\":
            if pos + 1 >= len(text):
                raise _sosl_error(text, pos, "mismatched character '<EOF>' expecting '}'")
            nxt = text[pos + 1]
            # Keep escaped wildcards distinguishable from real ones.
            word.append("\\" + nxt if nxt in "*?" else nxt)
            pos += 2
            continue
        if char == "}":
            flush()
            return tokens, pos
        if char.isspace():
            flush()
            pos += 1
            continue
        if char == '"':
            flush()
            phrase: list[str] = []
            pos += 1
            while True:
                if pos >= len(text):
                    raise _sosl_error(text, pos, "mismatched character '<EOF>' expecting '\"'")
                if text[pos] == "\\" and pos + 1 < len(text):
                    phrase.append(text[pos + 1])
                    pos += 2
                    continue
                if text[pos] == '"':
                    pos += 1
                    break
                phrase.append(text[pos])
                pos += 1
            tokens.append(("phrase", "".join(phrase)))
            continue
        if char in "()":
            flush()
            tokens.append(("lparen" if char == "(" else "rparen", char))
            pos += 1
            continue
        if char in _SOSL_RESERVED and char not in _SOSL_OPERATOR_CHARS:
            raise _sosl_error(text, pos, f"mismatched character '{char}' expecting '}}'")
        word.append(char)
        pos += 1
    raise _sosl_error(text, pos, "mismatched character '<EOF>' expecting '}'")


class _SearchExpressionParser:
    """Parses scanned SOSL tokens into AND/OR/NOT trees (implicit AND between terms)."""

    def __init__(self, tokens: list[tuple[str, str]], text: str) -> None:
        self.tokens = tokens
        self.text = text
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def is_op(self, token: tuple[str, str] | None, *words: str) -> bool:
        return token is not None and token[0] == "word" and token[1].upper() in words

    def parse(self) -> Any:
        if not self.tokens:
            raise ApiError(
                400,
                "MALFORMED_SEARCH",
                "No search term found. The search term must be at least 2 characters long.",
            )
        expression = self.parse_or()
        if self.peek() is not None:
            raise ApiError(400, "MALFORMED_SEARCH", f"unexpected token in search: {self.text}")
        return expression

    def parse_or(self) -> Any:
        items = [self.parse_and()]
        while self.is_op(self.peek(), "OR"):
            self.index += 1
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else _SBool("OR", items)

    def parse_and(self) -> Any:
        items = [self.parse_unary()]
        while True:
            token = self.peek()
            if token is None or token[0] == "rparen" or self.is_op(token, "OR"):
                break
            if self.is_op(token, "AND"):
                self.index += 1
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else _SBool("AND", items)

    def parse_unary(self) -> Any:
        token = self.peek()
        if token is None:
            raise ApiError(400, "MALFORMED_SEARCH", f"incomplete search query: {self.text}")
        if self.is_op(token, "NOT"):
            self.index += 1
            return _SNot(self.parse_unary())
        if token[0] == "lparen":
            self.index += 1
            expression = self.parse_or()
            closing = self.peek()
            if closing is None or closing[0] != "rparen":
                raise ApiError(
                    400, "MALFORMED_SEARCH", f"unbalanced parentheses in search: {self.text}"
                )
            self.index += 1
            return expression
        if token[0] == "rparen":
            raise ApiError(
                400, "MALFORMED_SEARCH", f"unbalanced parentheses in search: {self.text}"
            )
        self.index += 1
        return _STerm(token[1], token[0] == "phrase")


def search_terms(expression: Any) -> Iterator[_STerm]:
    """Every term of a parsed search expression, left to right."""
    if isinstance(expression, _STerm):
        yield expression
    elif isinstance(expression, _SBool):
        for item in expression.items:
            yield from search_terms(item)
    elif isinstance(expression, _SNot):
        yield from search_terms(expression.item)


def phone_alternatives(expression: Any) -> list[str]:
    """Phone numbers a search expression asks for.

    Approximation: each top-level OR alternative is one phone number; the words of an
    (implicit or explicit) AND group are concatenated, so ``+49 (211) 63553400`` is one
    number.  NOT branches are ignored.
    """
    if isinstance(expression, _STerm):
        return [expression.text]
    if isinstance(expression, _SNot):
        return [""]
    if isinstance(expression, _SBool) and expression.op == "OR":
        return [alt for item in expression.items for alt in phone_alternatives(item)]
    combined = [""]
    for item in expression.items:
        combined = [left + right for left in combined for right in phone_alternatives(item)]
    return combined


def _words(text: str) -> list[str]:
    return [word for word in re.split(r"[^\w*?\\]+", text.casefold()) if word]


def _word_matches(pattern: str, word: str) -> bool:
    if "*" not in pattern and "?" not in pattern:
        return pattern.replace("\\", "") == word
    # Salesforce: "Asterisks match zero or more characters", "question marks match only one".
    return re.fullmatch(wildcard_regex(pattern, {"*": ".*", "?": "."}), word) is not None


def _text_term_matches(term: _STerm, texts: Sequence[str]) -> bool:
    needle = (
        _words(term.text)
        if not term.phrase
        else [re.sub(r"([*?])", r"\\\1", word) for word in _words(term.text)]
    )
    if not needle:
        return False
    for text in texts:
        haystack = [word.replace("\\", "") for word in _words(text)]
        for offset in range(len(haystack) - len(needle) + 1):
            if all(
                _word_matches(pattern, haystack[offset + i]) for i, pattern in enumerate(needle)
            ):
                return True
    return False


def text_expression_matches(expression: Any, texts: Sequence[str]) -> bool:
    """True when the search expression matches the words of `texts`."""
    if isinstance(expression, _STerm):
        return _text_term_matches(expression, texts)
    if isinstance(expression, _SNot):
        return not text_expression_matches(expression.item, texts)
    results = (text_expression_matches(item, texts) for item in expression.items)
    return all(results) if expression.op == "AND" else any(results)


def parse_sosl(text: str) -> SoslQuery:
    """The parsed SOSL ``FIND`` statement `text`; raises ApiError ``MALFORMED_SEARCH``."""
    match = re.match(r"\s*FIND\s*", text, re.IGNORECASE)
    if not match:
        raise ApiError(
            400, "MALFORMED_SEARCH", f"unexpected token: search must start with FIND: {text}"
        )
    start = match.end()
    if start >= len(text) or text[start] != "{":
        raise _sosl_error(
            text,
            start,
            f"mismatched character '{text[start : start + 1] or '<EOF>'}' expecting '{{'",
        )
    tokens, end = _scan_sosl_term(text, start + 1)
    expression = _SearchExpressionParser(tokens, text).parse()
    letters = sum(1 for term in search_terms(expression) for char in term.text if char.isalnum())
    if letters < 2:
        raise ApiError(
            400,
            "MALFORMED_SEARCH",
            "No search term found. The search term must be at least 2 characters long.",
        )
    rest = text[end + 1 :]
    scope = "ALL"
    returning: list[ReturningSpec] = []
    limit: int | None = None
    pos = 0

    def skip_ws() -> None:
        nonlocal pos
        while pos < len(rest) and rest[pos].isspace():
            pos += 1

    def word() -> str:
        nonlocal pos
        skip_ws()
        found = re.match(r"[A-Za-z_][A-Za-z0-9_]*", rest[pos:])
        if not found:
            return ""
        pos += found.end()
        return found.group()

    def peek_word() -> str:
        saved = pos
        value = word()
        restore(saved)
        return value

    def restore(saved: int) -> None:
        nonlocal pos
        pos = saved

    if peek_word().upper() == "IN":
        word()
        scope = word().upper()
        if scope not in SOSL_SCOPES or word().upper() != "FIELDS":
            raise ApiError(
                400,
                "MALFORMED_SEARCH",
                f"invalid search group, expected e.g. IN PHONE FIELDS: {text}",
            )
    if peek_word().upper() == "RETURNING":
        word()
        while True:
            name = word()
            if not name:
                raise ApiError(
                    400, "MALFORMED_SEARCH", f"expected an object name after RETURNING: {text}"
                )
            skip_ws()
            inner = None
            if pos < len(rest) and rest[pos] == "(":
                depth = 0
                quote = False
                begin = pos + 1
                while pos < len(rest):
                    char = rest[pos]
                    if quote:
                        if char == "\\":
                            pos += 1
                        elif char == "'":
                            quote = False
                    elif char == "'":
                        quote = True
                    elif char == "(":
                        depth += 1
                    elif char == ")":
                        depth -= 1
                        if depth == 0:
                            break
                    pos += 1
                if pos >= len(rest):
                    raise ApiError(400, "MALFORMED_SEARCH", f"unbalanced parentheses: {text}")
                inner = rest[begin:pos]
                pos += 1
            returning.append(ReturningSpec(name, inner))
            skip_ws()
            if pos < len(rest) and rest[pos] == ",":
                pos += 1
                continue
            break
    following = peek_word().upper()
    if following in ("WITH", "UPDATE", "USING"):
        raise ApiError(400, "MALFORMED_SEARCH", f"{UNSUPPORTED} SOSL {following} clauses")
    if following == "LIMIT":
        word()
        skip_ws()
        number = re.match(r"\d+", rest[pos:])
        if not number:
            raise ApiError(400, "MALFORMED_SEARCH", f"LIMIT needs a number: {text}")
        limit = int(number.group())
        pos += number.end()
    skip_ws()
    if pos < len(rest):
        raise ApiError(400, "MALFORMED_SEARCH", f"unexpected token '{rest[pos:]}' in: {text}")
    return SoslQuery(expression, scope, returning, limit)


def returning_query(sobject: str, inner: str) -> SoqlQuery:
    """The SOQL query of one ``RETURNING sobject(inner)`` clause."""
    tokens = tokenize_soql(inner)
    split = next(
        (
            token.pos
            for token in tokens
            if token.is_kw("WHERE", "ORDER", "LIMIT", "OFFSET", "USING", "WITH")
        ),
        len(inner),
    )
    fields, rest = inner[:split].strip(), inner[split:]
    if not fields:
        raise ApiError(400, "MALFORMED_SEARCH", f"no fields in RETURNING {sobject}({inner})")
    try:
        return SoqlParser(f"SELECT {fields} FROM {sobject} {rest}").parse()
    except ApiError as error:
        error.body[0]["errorCode"] = "MALFORMED_SEARCH"
        raise
