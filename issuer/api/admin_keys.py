"""Signing keys in the staff-only admin REST API (/api/v1/admin/signing_keys/): the same services as the keys
page and `manage.py signing_keys`. Only public members ever leave: kid, state, times, public JWK."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response

from audit.reasons import reason_text
from config.permissions import permission
from issuer.keys.crypto import ALLOWED_KEY_SIZES
from issuer.keys.selectors import SIGNING_KEY_FIELDS
from issuer.keys.services import SigningKeyRefused, signing_key_act, signing_key_create
from issuer.models import SigningKey


class SigningKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = SigningKey
        fields = [*SIGNING_KEY_FIELDS, "public_jwk"]
        read_only_fields = fields


class ReasonField(serializers.CharField):
    """A reason as the audit trail keeps it (audit.reasons): invisible characters alone are no reason."""

    def to_internal_value(self, data):
        text = reason_text(super().to_internal_value(data))
        if not text and not self.allow_blank:
            self.fail("blank")
        return text


class ReasonSerializer(serializers.Serializer):
    reason = ReasonField(default="", allow_blank=True, max_length=2000, help_text="Why; recorded in the audit trail.")


class CreateKeySerializer(ReasonSerializer):
    key_size = serializers.ChoiceField(choices=ALLOWED_KEY_SIZES, required=False)


class RevokeSerializer(serializers.Serializer):
    reason = ReasonField(max_length=2000, help_text="Why (required, visible text); recorded in the audit trail.")


class ForceSerializer(ReasonSerializer):
    force = serializers.BooleanField(
        default=False, help_text="Act before the safe time (publish lead, overlap); needs a `reason`."
    )


_refused = OpenApiResponse(description="The lifecycle rules refuse this now; `detail` says why (409).")


class SigningKeyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    queryset = SigningKey.objects.order_by("created_at")
    serializer_class = SigningKeySerializer
    lookup_field = "kid"
    lookup_value_regex = "[A-Za-z0-9_-]+"

    def get_permissions(self):
        """Reading keys is a view permission; every lifecycle step needs the key-operator permission."""
        if self.action in ("list", "retrieve"):
            return super().get_permissions()
        return [IsAdminUser(), permission("issuer.operate_signingkey")()]

    def _act(self, request, action: str, kid: str):
        """One step of the shared action table; `force` and `reason` are read from the body (`force` is ignored where
        it means nothing; the service refuses a revoke or a forced step without a reason). An unknown kid is a 404,
        as on every route with an id; a 409 is the lifecycle's refusal of a key that exists."""
        self.get_object()
        body = (RevokeSerializer if action == "revoke" else ForceSerializer)(data=request.data)
        body.is_valid(raise_exception=True)
        force, reason = body.validated_data.get("force", False), body.validated_data["reason"]
        try:
            key = signing_key_act(action, kid, force=force, reason=reason)
        except SigningKeyRefused as refused:
            return Response({"detail": str(refused)}, status=status.HTTP_409_CONFLICT)
        return Response(SigningKeySerializer(key).data if key is not None else None)

    @extend_schema(request=CreateKeySerializer, responses={201: SigningKeySerializer})
    def create(self, request):
        body = CreateKeySerializer(data=request.data)
        body.is_valid(raise_exception=True)
        key = signing_key_create(key_size=body.validated_data.get("key_size"), reason=body.validated_data["reason"])
        return Response(SigningKeySerializer(key).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ForceSerializer, responses={200: SigningKeySerializer, 409: _refused})
    @action(detail=True, methods=["post"])
    def activate(self, request, kid=None):
        return self._act(request, "activate", kid)

    @extend_schema(request=ReasonSerializer, responses={200: SigningKeySerializer, 409: _refused})
    @action(detail=True, methods=["post"])
    def retire(self, request, kid=None):
        return self._act(request, "retire", kid)

    @extend_schema(request=RevokeSerializer, responses={200: SigningKeySerializer, 409: _refused})
    @action(detail=True, methods=["post"])
    def revoke(self, request, kid=None):
        return self._act(request, "revoke", kid)

    @extend_schema(request=ForceSerializer, responses={200: OpenApiResponse(description="Purged."), 409: _refused})
    @action(detail=True, methods=["post"])
    def purge(self, request, kid=None):
        return self._act(request, "purge", kid)
