"""DRF glue shared by every API: model validation errors become 400s, an unreachable database a 503; never 500s."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from config.unavailable import DATABASE_UNREACHABLE, RETRY_AFTER_SECONDS, RETRY_LATER


def exception_handler(exc, context):
    if isinstance(exc, DATABASE_UNREACHABLE):
        return Response({"detail": RETRY_LATER}, status=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        if "__all__" in detail:
            detail = {**detail, "non_field_errors": detail.pop("__all__")}
        exc = exceptions.ValidationError(detail=detail)
    return drf_exception_handler(exc, context)
