"""The audit trail in Django admin: a read-only list that answers "what happened to this customer" (search by object
or customer name, a link to each event's object and customer, the changes as the pages' "Recent changes" show
them). No one, not even a superuser, can add, change or delete an event here, and an event has no history of its
own (Django's history page would only say so)."""

import json

from django.apps import apps
from django.contrib import admin
from django.http import Http404
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join

from audit.models import AuditEvent
from audit.selectors import audit_events_matching_text
from config.admin_base import FleetScaleAdmin, ReadOnlyAdmin, fixed_choices_filter
from config.admin_export import CsvExportAdmin

AUDITED_OBJECT_TYPES = ("customer", "subscription", "addonpurchase", "instance", "signingkey", "auditevent")
# Where a customer's events link: the customer's page (the back office's hub), found by URL name, not by import.
CUSTOMER_PAGE = "admin:subscriptions_customer_change"


def object_page(event: AuditEvent) -> str | None:
    """The admin page of the event's object, when its type is a registered model and the object has a page."""
    for model in apps.get_models():
        if model._meta.model_name == event.object_type and admin.site.is_registered(model):
            try:
                return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[event.object_id])
            except NoReverseMatch:
                return None
    return None


def changes_shown(event: AuditEvent):
    """The changes as the "Recent changes" tables show them: `field: before → after`, "—" for nothing."""

    def shown(value):
        return "—" if value is None else value

    return format_html_join(
        "",
        "<div><code>{}</code>: {} → {}</div>",
        ((name, shown(values[0]), shown(values[1])) for name, values in event.changes.items()),
    )


def _actor_of_row(row: dict) -> str:
    return AuditEvent(actor_kind=row["actor_kind"], actor_name=row["actor_name"]).actor


@admin.register(AuditEvent)
class AuditEventAdmin(CsvExportAdmin, ReadOnlyAdmin, FleetScaleAdmin):
    csv_columns = (
        ("id", "id"),
        ("at", "at"),
        ("actor", _actor_of_row),
        ("action", "action"),
        ("object type", "object_type"),
        ("object id", "object_id"),
        ("object", "object_repr"),
        ("customer id", "customer_id"),
        ("customer", "customer_name"),
        ("changes", lambda row: json.dumps(row["changes"], sort_keys=True, ensure_ascii=False)),
        ("reason", "reason"),
        ("request id", "request_id"),
        ("client address", "client_address"),
    )
    csv_inputs = ("actor_kind", "actor_name", "changes")
    list_display = ["at", "actor", "action", "object", "customer", "changes_list", "reason"]
    list_filter = [
        "actor_kind",
        fixed_choices_filter("object_type", "object type", AUDITED_OBJECT_TYPES),
        ("at", admin.DateFieldListFilter),
    ]
    # "All of its events" on an object's page (?object_type=…&object_id=…) and on a customer's (?customer_id=…)
    link_lookups = ("object_id", "customer_id")
    search_fields = ["=actor_name", "=object_id", "=request_id", "object_repr", "customer_name"]
    search_help_text = (
        "Part of an object's or a customer's name (any case), or exactly: an actor as shown (alice, cli:root, "
        "job:<task>, instance:<uuid>), an action (subscription.update), an object id (digits) or a request id."
    )
    search_shapes = (
        (r"\d{1,19}", lambda events, term: events.filter(object_id=term)),
        (r"[a-z_]+\.[a-z_]+", lambda events, term: events.filter(action=term)),
        (r"[0-9a-f]{32}", lambda events, term: events.filter(request_id=term)),
    )
    fields = [
        "at",
        "actor",
        "actor_user_id",
        "action",
        "object",
        "customer",
        "changes_list",
        "reason",
        "request_id",
        "client_address",
    ]
    readonly_fields = fields

    def search_text(self, request, queryset, term):
        return queryset.filter(pk__in=audit_events_matching_text(term))

    @admin.display(ordering="actor_name")
    def actor(self, event):
        return event.actor

    @admin.display(description="object")
    def object(self, event):
        label = event.object_repr or f"{event.object_type} {event.object_id}".strip()
        url = object_page(event) if event.object_id else None
        if url is None:
            return format_html("{} <small>({})</small>", label, event.object_type)
        return format_html('<a href="{}">{}</a> <small>({})</small>', url, label, event.object_type)

    @admin.display(description="customer")
    def customer(self, event):
        if event.customer_id is None:
            return "—"
        try:
            url = reverse(CUSTOMER_PAGE, args=[event.customer_id])
        except NoReverseMatch:
            return event.customer_name
        return format_html('<a href="{}">{}</a>', url, event.customer_name or event.customer_id)

    @admin.display(description="changes")
    def changes_list(self, event):
        return changes_shown(event)

    def get_actions(self, request):
        return {}

    def history_view(self, request, object_id, extra_context=None):
        raise Http404("An audit event has no history: it is never changed.")
