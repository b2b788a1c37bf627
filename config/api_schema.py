"""The error answers of the admin API in its OpenAPI schema, documented by rule where they come from one place.

drf-spectacular documents what a view declares (its 200/201, and a 409 the signing-key actions name); the answers
DRF's machinery and config.api give every route are added here, after generation (SPECTACULAR_SETTINGS
["POSTPROCESSING_HOOKS"]), each with the body it really has:

- 401 no or a refused credential (knox answers first, with `WWW-Authenticate: Token`), 403 a signed-in account
  whose role lacks the permission, 503 "retry later" when the database is unreachable (config.api): every route;
- 404 an unknown id in the path, or a page or cursor beyond the list: every route with a path parameter or a page;
- 400 a body that is not JSON or does not validate, 415 a body of another media type: every route with a body;
- 400 a query parameter that does not validate, 409 a state that refuses the step: the routes whose view declares
  it (`extend_schema(responses={400: None})`: the audit events' filters, a statement's month; the signing-key
  actions' 409), given their body here.

`tests/test_api_schema_statuses.py` calls every route's error paths and fails when an answer is undocumented, or
a documented answer has no case that produces it.
"""

ADMIN_PREFIX = "/api/v1/admin/"

ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string"}},
    "required": ["detail"],
    "description": "Why the request was refused.",
}
VALIDATION_ERRORS = {
    "type": "object",
    "description": "What did not validate: `detail` for a body that is not JSON, otherwise each field (or "
    "`non_field_errors`) with its messages.",
    "additionalProperties": {"oneOf": [{"type": "array", "items": {}}, {"type": "object"}, {"type": "string"}]},
}

ANSWERS = {
    "400": ("ValidationErrors", "The body or a parameter does not validate; nothing was changed."),
    "401": ("Error", "No credential, or one that is unknown, expired or revoked."),
    "403": ("Error", "The account's role does not allow this."),
    "404": ("Error", "No such object, or a page or cursor beyond the list."),
    "409": ("Error", "The lifecycle rules refuse this now; `detail` says why."),
    "415": ("Error", "The body is not JSON (or a form)."),
    "503": ("Error", "The database is unreachable: retry later (`Retry-After`)."),
}


def _codes(path: str, method: str, operation: dict) -> set[str]:
    codes = {"401", "403", "503"}
    paginated = method == "get" and any(p["name"] in {"page", "cursor"} for p in operation.get("parameters", []))
    if "{" in path or paginated:
        codes.add("404")
    if "requestBody" in operation:
        codes |= {"400", "415"}
    return codes


def admin_error_answers(result, generator, request, public):
    """POSTPROCESSING_HOOKS entry: every admin operation gets its error answers with their bodies."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("Error", ERROR)
    schemas.setdefault("ValidationErrors", VALIDATION_ERRORS)
    for path, operations in result.get("paths", {}).items():
        if not path.startswith(ADMIN_PREFIX):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            responses = operation.setdefault("responses", {})
            for code in sorted(_codes(path, method, operation) | (set(responses) & set(ANSWERS))):
                component, description = ANSWERS[code]
                answer = responses.setdefault(code, {})
                if answer.get("description", "No response body") == "No response body":
                    answer["description"] = description
                answer.setdefault("content", {"application/json": {"schema": {"$ref": _ref(component)}}})
    return result


def _ref(component: str) -> str:
    return f"#/components/schemas/{component}"
