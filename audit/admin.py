"""The audit trail in Django admin: a read-only list with filters. No one, not even a superuser, can add,
change or delete an event here."""

from django.contrib import admin

from audit.models import AuditEvent
from audit.selectors import audit_events_filtered
from config.admin_base import FleetScaleAdmin, ReadOnlyAdmin, fixed_choices_filter

AUDITED_OBJECT_TYPES = ("customer", "subscription", "addonpurchase", "instance", "signingkey", "auditevent")


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin, FleetScaleAdmin):
    list_display = ["at", "actor", "action", "object_type", "object_id", "object_repr", "reason"]
    list_filter = [
        "actor_kind",
        fixed_choices_filter("object_type", "object type", AUDITED_OBJECT_TYPES),
        ("at", admin.DateFieldListFilter),
    ]
    link_lookups = ("object_id",)  # "All of its events" on an object's page: ?object_type=…&object_id=…
    search_fields = ["=actor_name", "=object_id", "=request_id"]
    search_help_text = (
        "An actor as shown (alice, cli:root, job:<task>, instance:<uuid>), an action (subscription.update), an "
        "object id (digits), or a request id; each exact."
    )
    search_shapes = (
        (r"\d{1,19}", lambda events, term: events.filter(object_id=term)),
        (r"[a-z_]+\.[a-z_]+", lambda events, term: events.filter(action=term)),
        (r"[0-9a-f]{32}", lambda events, term: events.filter(request_id=term)),
    )

    def search_text(self, request, queryset, term):
        return queryset & audit_events_filtered(actor=term)

    readonly_fields = [field.name for field in AuditEvent._meta.fields]

    @admin.display(ordering="actor_name")
    def actor(self, event):
        return event.actor

    def get_actions(self, request):
        return {}
