"""`POST /api/v1/service_access_tokens` (PROTOCOL §8): the REST twin of the GraphQL sync, for our own clients."""

import logging

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from config.api import JSONParser, RequestTooLarge
from config.limits import declared_body_length, rate_limit_address, rate_limit_license_key
from config.unavailable import RETRY_AFTER_SECONDS, RETRY_LATER
from issuer.api.auth import InstanceThrottle, LicenseKeyAuthentication, bearer_license_key
from issuer.api.http import header, instance_headers
from issuer.keys.services import SigningKeyRefused
from issuer.tokens.services import NO_ACCESS, InstanceIdMismatch, service_access_token_sync

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024  # the body is at most {"gitlab_version": "..."}


class TokenRequestSerializer(serializers.Serializer):
    gitlab_version = serializers.CharField(required=False, allow_blank=True, max_length=64)


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
    scopes = serializers.ListField(child=serializers.CharField())
    audiences = serializers.ListField(child=serializers.CharField())
    kid = serializers.CharField()


_error = inline_serializer("Error", {"detail": serializers.CharField()})


class ServiceAccessTokenView(APIView):
    """`POST /api/v1/service_access_tokens` (PROTOCOL §8): the REST twin of the GraphQL sync."""

    authentication_classes = [LicenseKeyAuthentication]
    permission_classes = []
    throttle_classes = [InstanceThrottle]
    parser_classes = [JSONParser]  # JSON only, as every instance door: a form or text/plain body is a 415

    def initial(self, request, *args, **kwargs):
        """Rate limits before the license key is looked up: per client address, then per key (config/limits.py)."""
        license_key = bearer_license_key(request)
        limited = rate_limit_address(request) or (license_key and rate_limit_license_key(request, license_key))
        if limited:
            raise exceptions.Throttled(wait=limited.retry_after, detail=limited.message)
        if declared_body_length(request) > MAX_BODY_BYTES:
            raise RequestTooLarge(f"The request body is larger than {MAX_BODY_BYTES} bytes.")
        super().initial(request, *args, **kwargs)

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            200: TokenResponseSerializer,
            401: OpenApiResponse(_error, description="Missing, unknown or wrong license key."),
            403: OpenApiResponse(
                _error, description="Subscription ended, instance suspended, or instance id mismatch."
            ),
            429: OpenApiResponse(_error, description="Too many requests for this instance."),
        },
        summary="Issue (or hand out the stored) ServiceAccessToken",
    )
    def post(self, request):
        state = request.auth
        body = TokenRequestSerializer(data=request.data if isinstance(request.data, dict) else {})
        body.is_valid(raise_exception=True)
        gitlab_version = body.validated_data.get("gitlab_version") or header(request, "X-Gitlab-Version")
        try:
            result = service_access_token_sync(state, gitlab_version=gitlab_version, **instance_headers(request))
        except SigningKeyRefused as error:  # the caller hears "retry"; the operator reads why
            logger.warning("token request answered 503", extra={"error": repr(error)})
            return Response(
                {"detail": RETRY_LATER},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        except InstanceIdMismatch as error:
            return Response({"detail": str(error)}, status=status.HTTP_403_FORBIDDEN)
        if result.token is None:
            return Response({"detail": NO_ACCESS}, status=status.HTTP_403_FORBIDDEN)
        return Response(
            TokenResponseSerializer(
                {
                    "token": result.token,
                    "expires_at": result.expires_at,
                    "scopes": result.scopes,
                    "audiences": result.audiences,
                    "kid": result.kid,
                }
            ).data
        )
