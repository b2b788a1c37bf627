"""A transient failure (the database, or a cache write that must not be lost, cannot be made) is not a bad request:
every door answers 503 "retry later",
so GitLab reports a connectivity problem and tries again, instead of a 500 or a business error it would not retry.
"""

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

from config.cache import CacheUnavailable

TRANSIENT_FAILURES = (OperationalError, InterfaceError, CacheUnavailable)
RETRY_LATER = "The subscription portal cannot answer right now (a temporary failure on its side). Please retry later."
RETRY_AFTER_SECONDS = 30


def retry_later_response(body: dict) -> JsonResponse:
    response = JsonResponse(body, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseUnavailableMiddleware:
    """The last net, for doors without their own answer (seat links, pages): a JSON 503 with Retry-After."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, TRANSIENT_FAILURES):
            return retry_later_response({"success": False, "error": RETRY_LATER})
        return None
