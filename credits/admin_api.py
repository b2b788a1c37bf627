"""The credits in the staff-only admin API, under /api/v1/admin/credits/: the same services as the back office."""

from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.reasons import reason_text
from config.permissions import permission
from credits import services
from credits.models import CreditGrant
from credits.selectors import credits_text, month_of, month_statement
from subscriptions.models import Subscription


class GrantSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=[k.value for k in CreditGrant.Kind if k != CreditGrant.Kind.INCLUDED])
    reason = serializers.CharField(max_length=500)

    class Meta:
        model = CreditGrant
        fields = ["id", "subscription", "kind", "amount", "month", "starts_on", "expires_on", "reason", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_reason(self, value):
        if not reason_text(value):
            raise serializers.ValidationError("Say why, in visible characters: it is recorded in the audit trail.")
        return value

    def create(self, validated_data):
        return services.credit_grant_create(**validated_data)


class OverageSerializer(serializers.Serializer):
    allowed = serializers.BooleanField()
    reason = serializers.CharField(max_length=500)


def _statement_data(statement) -> dict:
    return {
        "subscription": statement.subscription_id,
        "month": statement.month.isoformat(),
        "granted": credits_text(statement.granted),
        "used": credits_text(statement.usage),
        "remaining": credits_text(statement.remaining),
        "overage_used": credits_text(statement.overage_used),
        "overage_allowed": statement.overage_allowed,
        "events": statement.events,
        "unpriced_events": statement.unpriced_events,
        "pools": [
            {
                "kind": pool.kind,
                "granted": credits_text(pool.granted),
                "used": credits_text(pool.used),
                "remaining": credits_text(pool.remaining),
                "expires_on": pool.expires_on.isoformat() if pool.expires_on else None,
            }
            for pool in statement.pools
        ],
        "daily": [{"date": day.isoformat(), "credits": credits_text(spent)} for day, spent in statement.daily],
    }


STATEMENT = inline_serializer(
    "CreditStatement",
    {
        "subscription": serializers.IntegerField(),
        "month": serializers.DateField(),
        "granted": serializers.DecimalField(18, 6),
        "used": serializers.DecimalField(18, 6),
        "remaining": serializers.DecimalField(18, 6),
        "overage_used": serializers.DecimalField(18, 6),
        "overage_allowed": serializers.BooleanField(),
        "events": serializers.IntegerField(),
        "unpriced_events": serializers.IntegerField(),
        "pools": serializers.ListField(child=serializers.DictField()),
        "daily": serializers.ListField(child=serializers.DictField()),
    },
)


class StatementView(APIView):
    permission_classes = [permission("credits.view_usageevent")]

    @extend_schema(
        parameters=[OpenApiParameter("month", str, description="YYYY-MM (default: the current UTC month)")],
        responses={200: STATEMENT, 400: None, 404: None},
    )
    def get(self, request, pk):
        subscription = get_object_or_404(Subscription, pk=pk)
        month = month_of(timezone.now())
        if asked := request.query_params.get("month"):
            try:
                month = timezone.datetime.strptime(asked, "%Y-%m").date()
            except ValueError:
                return Response({"month": ["Expected YYYY-MM."]}, status=status.HTTP_400_BAD_REQUEST)
        return Response(_statement_data(month_statement(subscription, month)))


class GrantCreateView(APIView):
    permission_classes = [permission("credits.add_creditgrant")]

    @extend_schema(request=GrantSerializer, responses={201: GrantSerializer, 400: None})
    def post(self, request):
        grant = GrantSerializer(data=request.data)
        grant.is_valid(raise_exception=True)
        return Response(GrantSerializer(grant.save()).data, status=status.HTTP_201_CREATED)


class OverageView(APIView):
    permission_classes = [permission("credits.change_creditaccount")]

    @extend_schema(request=OverageSerializer, responses={200: OverageSerializer, 400: None, 404: None})
    def post(self, request, pk):
        subscription = get_object_or_404(Subscription, pk=pk)
        change = OverageSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        account = services.credit_overage_set(
            subscription, change.validated_data["allowed"], reason=change.validated_data["reason"]
        )
        return Response({"allowed": account.overage_allowed, "reason": change.validated_data["reason"]})


class CapsSerializer(serializers.Serializer):
    user_cap = serializers.DecimalField(
        18, 6, min_value=0, allow_null=True, help_text="Credits a user may use a month; null: no flat cap."
    )
    reason = serializers.CharField(max_length=500)


class CapOverrideSerializer(serializers.Serializer):
    user_key = serializers.CharField(max_length=100, help_text="The GitLab user id.")
    cap = serializers.DecimalField(18, 6, min_value=0, allow_null=True, help_text="null: back to the flat cap.")
    reason = serializers.CharField(max_length=500)


class CapsView(APIView):
    """The subscription's flat monthly cap per user (GitLab 19.4's model), with a reason; audited."""

    permission_classes = [permission("credits.change_creditaccount")]

    @extend_schema(request=CapsSerializer, responses={200: CapsSerializer, 400: None, 404: None})
    def post(self, request, pk):
        subscription = get_object_or_404(Subscription, pk=pk)
        change = CapsSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        account = services.credit_user_cap_set(
            subscription, change.validated_data["user_cap"], reason=change.validated_data["reason"]
        )
        cap = None if account.user_cap is None else credits_text(account.user_cap)
        return Response({"user_cap": cap, "reason": change.validated_data["reason"]})


class CapOverrideView(APIView):
    """One user's own monthly cap over the flat one, or null to remove it; with a reason, audited."""

    permission_classes = [permission("credits.change_usercapoverride")]

    @extend_schema(request=CapOverrideSerializer, responses={200: CapOverrideSerializer, 400: None, 404: None})
    def post(self, request, pk):
        subscription = get_object_or_404(Subscription, pk=pk)
        change = CapOverrideSerializer(data=request.data)
        change.is_valid(raise_exception=True)
        data = change.validated_data
        override = services.credit_user_cap_override_set(
            subscription, data["user_key"], data["cap"], reason=data["reason"]
        )
        cap = None if override is None else credits_text(override.cap)
        return Response({"user_key": data["user_key"], "cap": cap, "reason": data["reason"]})
