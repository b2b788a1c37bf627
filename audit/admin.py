"""The audit trail in Django admin: a read-only list with filters. No one, not even a superuser, can add,
change or delete an event here."""

from django.contrib import admin

from audit.models import AuditEvent
from config.admin_base import ReadOnlyAdmin


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "object_type", "object_id", "object_repr", "reason"]
    list_filter = ["actor_kind", "action", "object_type", ("at", admin.DateFieldListFilter)]
    search_fields = ["=actor_name", "=object_id", "=request_id"]
    date_hierarchy = "at"
    readonly_fields = [field.name for field in AuditEvent._meta.fields]
    list_select_related = False
    show_full_result_count = False

    @admin.display(ordering="actor_name")
    def actor(self, event):
        return event.actor

    def get_actions(self, request):
        return {}
