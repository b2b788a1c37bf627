"""What `/graphql` accepts from an unauthenticated caller, bounded in size and work before anything is looked up.

GitLab's real documents are under 1.1 kB and 141 tokens (its usage read-back's user events), one root field, no
aliases, no fragments, at most three levels deep, but for the usage read-back (`subscription { gitlabCreditsUsage
{ usersUsage { users { events { nodes { timestamp } } } } } }`: seven), which alone may nest READBACK_MAX_DEPTH
deep; these limits sit well above that and far below what exhausts a worker
(graphql-core lexes about 8 µs a token, so MAX_TOKENS bounds the work on any document to a few milliseconds).
Each over-limit request is refused with a GraphQL error naming the limit, after work proportional to the limit,
not to the request (`bench/abuse_bench.py` measures it).

Parsed documents are cached per query text, at most PARSE_CACHE_ENTRIES of them, only texts of a plausible size,
and only documents that validated: GitLab sends the same few texts, an attacker sending distinct invalid ones
fills nothing, and distinct valid ones cost a re-parse of GitLab's (about a millisecond) at worst.
"""

import threading

from cachetools import LRUCache
from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    ValidationRule,
    parse,
    specified_rules,
    validate,
)

MAX_BODY_BYTES = 8 * 1024
MAX_TOKENS = 300
MAX_DEPTH = 5
READBACK_ROOT = "subscription"  # the usage read-back's root field: its documents only may nest deeper
READBACK_MAX_DEPTH = 8
MAX_VALIDATION_ERRORS = 10
# GitLab sends under twenty texts (the sync, the activation, the usage read-back's); a parse tree weighs many
# times its text, so the cache counts entries and keeps only texts of a plausible size.
PARSE_CACHE_ENTRIES = 32
PARSE_CACHE_MAX_TEXT = 4 * 1024


NUL_IN_STRINGS = "Strings must not contain NUL characters."


class GitLabShapedOperations(ValidationRule):
    """One root field per operation, no aliases (they multiply work and answers), a bounded depth (deeper only in
    an operation whose one root field is the usage read-back's), no NUL in a string of the document."""

    max_depth = MAX_DEPTH

    def enter_operation_definition(self, node, *_args):
        selections = node.selection_set.selections
        if len(selections) != 1 or type(selections[0]).__name__ != "FieldNode":
            self.report_error(
                GraphQLError("An operation must select exactly one root field (no fragments at the root).", node)
            )
            return
        self.max_depth = READBACK_MAX_DEPTH if selections[0].name.value == READBACK_ROOT else MAX_DEPTH

    def leave_operation_definition(self, *_args):
        self.max_depth = MAX_DEPTH

    def enter_string_value(self, node, *_args):
        """No database stores NUL: a document with one in a string (an argument, an input field, a variable's
        default) is refused whole, before anything runs; variables' values are checked as the request is read."""
        if "\x00" in node.value:
            self.report_error(GraphQLError(NUL_IN_STRINGS, node))

    def enter_field(self, node, _key, _parent, _path, ancestors):
        if node.alias is not None:
            self.report_error(GraphQLError(f"Aliases are not supported (alias {node.alias.value!r}).", node))
        depth = 1 + sum(1 for ancestor in ancestors if type(ancestor).__name__ == "FieldNode")
        if depth > self.max_depth:
            self.report_error(GraphQLError(f"The query is nested deeper than {self.max_depth} fields.", node))


RULES = (*specified_rules, GitLabShapedOperations)


class _ParseCache:
    def __init__(self):
        self._entries = LRUCache(maxsize=PARSE_CACHE_ENTRIES)
        self._lock = threading.Lock()

    def get(self, query: str):
        with self._lock:
            return self._entries.get(query)

    def put(self, query: str, document, memo: dict) -> None:
        if len(query) <= PARSE_CACHE_MAX_TEXT:
            with self._lock:
                self._entries[query] = (document, memo)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


parse_cache = _ParseCache()


def document_cached(query: str):
    """(document, (), memo) of a text that validated before, or None."""
    cached = parse_cache.get(query)
    return None if cached is None else (cached[0], (), cached[1])


def root_field(document, operation_name: str | None) -> str | None:
    """The one root field of the operation `operation_name` names (or of the only one), or None when the document
    does not say (no such operation, several without a name). Valid documents select exactly one root field."""
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [node for node in operations if node.name is not None and node.name.value == operation_name]
    if len(operations) != 1:
        return None
    selection = operations[0].selection_set.selections[0]
    return selection.name.value if isinstance(selection, FieldNode) else None


def document_prepared(query: str, schema):
    """(document, errors, memo): parsed and validated once per distinct valid text; an invalid text is parsed
    again each time (bounded by MAX_BODY_BYTES and MAX_TOKENS) and never kept. `memo` is the document's memo of
    static values (the catalog views)."""
    cached = parse_cache.get(query)
    if cached is not None:
        return cached[0], (), cached[1]
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as error:
        return None, (error,), None
    errors = tuple(validate(schema, document, rules=RULES, max_errors=MAX_VALIDATION_ERRORS))
    if errors:
        return None, errors, None
    memo = {}
    parse_cache.put(query, document, memo)
    return document, (), memo
