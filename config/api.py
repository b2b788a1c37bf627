"""DRF glue shared by every API: model validation errors become 400s, never 500s."""

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import exceptions
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        detail = exc.message_dict if hasattr(exc, "error_dict") else {"__all__": exc.messages}
        if "__all__" in detail:
            detail = {**detail, "non_field_errors": detail.pop("__all__")}
        exc = exceptions.ValidationError(detail=detail)
    return drf_exception_handler(exc, context)
