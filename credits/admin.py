"""The credits in the back office: grants and the overage switch through confirmation forms with a required reason
(each a service, audited), usage events to read. The subscription page shows the month's statement
(`credits/templatetags/credits_statement.py`)."""

import csv
import datetime as dt
import itertools

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils import timezone

from audit.reasons import reason_text
from config.admin_base import ReadOnlyAdmin
from credits import services
from credits.models import CreditAccount, CreditGrant, UsageEvent, UserCapOverride
from credits.selectors import month_of
from subscriptions.models import Subscription

GRANTABLE = [(kind.value, kind.label) for kind in CreditGrant.Kind if kind != CreditGrant.Kind.INCLUDED]


def _visible_reason(form) -> str:
    reason = reason_text(form.cleaned_data.get("reason"))
    if not reason:
        raise ValidationError("Say why, in visible characters: it is recorded in the audit trail.")
    return reason


class CreditGrantForm(forms.ModelForm):
    kind = forms.ChoiceField(choices=GRANTABLE)
    reason = forms.CharField(max_length=500, help_text="Required: recorded in the audit trail with the grant.")
    clean_reason = _visible_reason

    class Meta:
        model = CreditGrant
        fields = ["subscription", "kind", "amount", "month", "starts_on", "expires_on", "reason"]
        help_texts = {
            "amount": "Credits (1 credit = $1 at list price). Only an adjustment may be negative.",
            "month": "Waiver, commitment, adjustment: any day of the UTC month it is for.",
        }


@admin.register(CreditGrant)
class CreditGrantAdmin(admin.ModelAdmin):
    """Grants are added, never changed or deleted: a correction is an adjustment."""

    form = CreditGrantForm
    list_display = ["subscription", "kind", "amount", "month", "starts_on", "expires_on", "reason", "created_at"]
    list_select_related = ["subscription__customer"]
    list_filter = ["kind"]
    link_lookups = ("subscription",)  # the subscription page's "All grants"
    raw_id_fields = ["subscription"]
    show_full_result_count = False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data  # validated by the form like the service would: the model's rules and the reason
        saved = services.credit_grant_create(
            subscription=data["subscription"],
            kind=data["kind"],
            amount=data["amount"],
            reason=data["reason"],
            month=data.get("month"),
            starts_on=data.get("starts_on"),
            expires_on=data.get("expires_on"),
        )
        obj.pk = saved.pk


class CreditAccountForm(forms.ModelForm):
    reason = forms.CharField(max_length=500, help_text="Required: recorded in the audit trail.")
    clean_reason = _visible_reason

    class Meta:
        model = CreditAccount
        fields = ["subscription", "overage_allowed", "user_cap", "reason"]


@admin.register(CreditAccount)
class CreditAccountAdmin(admin.ModelAdmin):
    form = CreditAccountForm
    list_display = ["subscription", "overage_allowed", "user_cap", "updated_at"]
    list_filter = ["overage_allowed"]
    raw_id_fields = ["subscription"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return ["subscription"] if obj else []

    def add_view(self, request, form_url="", extra_context=None):
        """The subscription page links here; a subscription with an account already goes to that account."""
        existing = CreditAccount.objects.filter(subscription_id=request.GET.get("subscription") or None).first()
        if existing is not None:
            return redirect("admin:credits_creditaccount_change", existing.pk)
        return super().add_view(request, form_url, extra_context)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        subscription, reason = form.cleaned_data.get("subscription") or obj.subscription, form.cleaned_data["reason"]
        services.credit_overage_set(subscription, form.cleaned_data["overage_allowed"], reason=reason)
        saved = services.credit_user_cap_set(subscription, form.cleaned_data.get("user_cap"), reason=reason)
        obj.pk = saved.pk


CSV_COLUMNS = ["occurred_at", "event_id", "event_type", "quantity", "unit_of_measure", "credits", "user_key", "feature"]


def _cell(value) -> str:
    """A CSV cell a spreadsheet will not run: text from instances that starts like a formula is quoted."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class _Echo:
    def write(self, value):
        return value


@admin.register(UsageEvent)
class UsageEventAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "event_type", "quantity", "unit_of_measure", "credits", "instance", "user_key"]
    list_filter = ["event_type"]
    link_lookups = ("subscription",)  # the subscription page's "All events"
    show_full_result_count = False

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_view)
        return [path("export/", export, name="credits_usageevent_export"), *super().get_urls()]

    def export_view(self, request):
        """The month's usage events of one subscription as CSV, streamed a row at a time (flat memory)."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        subscription = get_object_or_404(Subscription, pk=request.GET.get("subscription") or 0)
        try:
            month = dt.datetime.strptime(request.GET.get("month", ""), "%Y-%m").date()
        except ValueError:
            month = month_of(timezone.now())
        events = (
            UsageEvent.objects.filter(subscription=subscription, month=month)
            .order_by("occurred_at", "id")
            .values_list(*CSV_COLUMNS)
            .iterator(chunk_size=2000)
        )
        writer = csv.writer(_Echo())
        rows = itertools.chain([CSV_COLUMNS], ([_cell(value) for value in row] for row in events))
        response = StreamingHttpResponse((writer.writerow(row) for row in rows), content_type="text/csv")
        name = f"credits-{subscription.pk}-{month:%Y-%m}.csv"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class UserCapOverrideForm(forms.ModelForm):
    reason = forms.CharField(max_length=500, help_text="Required: recorded in the audit trail.")
    clean_reason = _visible_reason

    class Meta:
        model = UserCapOverride
        fields = ["subscription", "user_key", "cap", "reason"]
        labels = {"user_key": "User"}
        help_texts = {"user_key": "The GitLab user id (global_user_id, else user_id) the gateway reports."}


@admin.register(UserCapOverride)
class UserCapOverrideAdmin(admin.ModelAdmin):
    form = UserCapOverrideForm
    list_display = ["subscription", "user_key", "cap", "updated_at"]
    link_lookups = ("subscription",)
    raw_id_fields = ["subscription"]
    show_full_result_count = False

    def get_readonly_fields(self, request, obj=None):
        return ["subscription", "user_key"] if obj else []

    def has_delete_permission(self, request, obj=None):
        return False  # set no cap through the service instead, with a reason

    def save_model(self, request, obj, form, change):
        subscription = form.cleaned_data.get("subscription") or obj.subscription
        user_key = form.cleaned_data.get("user_key") or obj.user_key
        saved = services.credit_user_cap_override_set(
            subscription, user_key, form.cleaned_data["cap"], reason=form.cleaned_data["reason"]
        )
        obj.pk = saved.pk
