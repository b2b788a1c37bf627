"""`GET /api/v1/admin/audit-events`: the audit trail for machines, with the admin list's filters and cursor
pagination (stable under concurrent writes, and as cheap on page 1,000 as on page 1)."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers
from rest_framework.pagination import CursorPagination

from audit.models import AuditEvent
from audit.selectors import audit_event_data, audit_events_filtered


class AuditEventFilters(serializers.Serializer):
    actor = serializers.CharField(required=False, max_length=160, help_text="`alice`, `cli:root`, `job:<task>`…")
    action = serializers.CharField(required=False, max_length=64)
    object_type = serializers.CharField(required=False, max_length=64)
    object_id = serializers.CharField(required=False, max_length=64)
    since = serializers.DateTimeField(required=False, help_text="Inclusive.")
    until = serializers.DateTimeField(required=False, help_text="Exclusive.")

    def validate(self, data):
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            raise serializers.ValidationError("`since` must be before `until`.")
        return data


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField()
    actor_kind = serializers.CharField()
    actor_user_id = serializers.IntegerField(allow_null=True)
    action = serializers.CharField()
    object_type = serializers.CharField()
    object_id = serializers.CharField()
    object_repr = serializers.CharField()
    changes = serializers.DictField(help_text="{field: [before, after]}; secrets as digests.")
    reason = serializers.CharField()
    request_id = serializers.CharField()
    client_address = serializers.IPAddressField(allow_null=True)

    def to_representation(self, event):
        return audit_event_data(event)


class NewestFirst(CursorPagination):
    ordering = ("-at", "-id")
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


@extend_schema(parameters=[AuditEventFilters], responses={200: AuditEventSerializer(many=True), 400: None})
class AuditEventList(generics.ListAPIView):
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    pagination_class = NewestFirst

    def filter_queryset(self, queryset):
        """The filters are read here, not in get_queryset: the permission check reads the queryset for its model
        before the method is dispatched, so a bad filter on a method the route lacks would be a 400, not a 405."""
        filters = AuditEventFilters(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return audit_events_filtered(**filters.validated_data)
