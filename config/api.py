"""DRF glue shared by every API: model validation errors become 400s, an unreachable database a 503; never 500s."""

import orjson
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, parsers
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.limits import MAX_JSON_DEPTH, json_too_deep
from config.unavailable import RETRY_AFTER_SECONDS, RETRY_LATER, TRANSIENT_FAILURES


def exception_handler(exc, context):
    if isinstance(exc, TRANSIENT_FAILURES):
        return Response({"detail": RETRY_LATER}, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        if "__all__" in detail:
            detail = {**detail, "non_field_errors": detail.pop("__all__")}
        exc = exceptions.ValidationError(detail=detail)
    return drf_exception_handler(exc, context)


class JSONParser(parsers.JSONParser):
    """orjson, and a nesting limit: deep JSON is a 400 before any validator walks it recursively."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = orjson.loads(stream.read())
        except orjson.JSONDecodeError as error:
            raise exceptions.ParseError(f"JSON parse error - {error}") from None
        if json_too_deep(data):
            raise exceptions.ParseError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels.")
        return data


class RequestTooLarge(exceptions.APIException):
    status_code = 413
    default_detail = "The request body is too large."
    default_code = "request_too_large"


def page_not_found(request, exception):
    """handler404: under /api/ a path no route matches (an id that is not a number) answers the JSON every API 404
    has (`{"detail": …}`, as the schema documents), not Django's HTML page; elsewhere Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)
