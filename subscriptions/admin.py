"""Django admin for the commercial side. Actions are doors onto the services; no secret is ever displayed."""

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AdminDateWidget
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F
from django.forms.models import BaseInlineFormSet
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from audit.reasons import reason_text
from audit.selectors import audit_context, audit_events_of_customer
from config.admin_base import UUID_SHAPE, FleetScaleAdmin, fixed_choices_filter, short_id
from config.admin_export import CsvExportAdmin
from subscriptions import services
from subscriptions.models import (
    ACTIVATION_CODE_ALPHABET,
    ACTIVATION_CODE_LENGTH,
    AddOnPurchase,
    Customer,
    Instance,
    SeatReport,
    Subscription,
)
from subscriptions.selectors import (
    INSTANCE_STATES,
    SUBSCRIPTION_STATUSES,
    add_on_purchases_ending_early,
    add_on_purchases_renewing_with,
    customer_overview,
    customers_named,
    instances_in_state,
    instances_matching_text,
    subscription_status,
    subscriptions_in_status,
)
from subscriptions.terms import one_year_after
from unit_primitives.catalog import get_catalog

REASON_REQUIRED = "Say why: the change is recorded in the audit trail with its reason."


def _catalog_choices(kind: str):
    return lambda: [(name, name) for name in getattr(get_catalog(), kind)]


class SubscriptionForm(forms.ModelForm):
    license_type = forms.ChoiceField(choices=_catalog_choices("license_types"))

    class Meta:
        model = Subscription
        fields = ["customer", "license_type", "seats", "starts_on", "expires_on", "trial"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "expires_on" in self.fields:  # not where the field is read-only (a viewer's page)
            self.fields["expires_on"].required = False
            self.fields["expires_on"].help_text = "First day without access. Blank: one year after the start."
        if "starts_on" in self.fields and self.instance.pk is None:
            self.fields["starts_on"].initial = timezone.localdate  # a sale starts today unless told otherwise

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("expires_on") and cleaned.get("starts_on") and "expires_on" not in self.errors:
            cleaned["expires_on"] = one_year_after(cleaned["starts_on"])
        return cleaned


class AddOnPurchaseForm(forms.ModelForm):
    add_on = forms.ChoiceField(choices=_catalog_choices("add_ons"))

    class Meta:
        model = AddOnPurchase
        fields = ["subscription", "add_on", "quantity", "started_on", "expires_on", "trial"]


class InlineAddOnPurchaseForm(AddOnPurchaseForm):
    """A row of the subscription page: blank dates are the subscription's (one sale is not four dates to type)."""

    def __init__(self, *args, parent: Subscription | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.parent = parent
        for name, parent_name in (("started_on", "starts_on"), ("expires_on", "expires_on")):
            if name in self.fields:
                self.fields[name].required = False
                self.fields[name].help_text = "Blank: the subscription's."
                if parent is not None and parent.pk is not None and self.instance.pk is None:
                    self.fields[name].initial = getattr(parent, parent_name)

    def clean(self):
        cleaned = super().clean()
        for name, parent_name in (("started_on", "starts_on"), ("expires_on", "expires_on")):
            if name in self.fields and not cleaned.get(name) and name not in self.errors:
                default = getattr(self.parent, parent_name, None)
                if default is None:
                    self.add_error(name, "Give a date, or the subscription's own.")
                else:
                    cleaned[name] = default
        return cleaned


class AddOnPurchaseFormSet(BaseInlineFormSet):
    def get_form_kwargs(self, index):
        # the subscription as the page's form saw it (on an add page: not saved yet, its dates already cleaned)
        return {**super().get_form_kwargs(index), "parent": self.instance}


class AddOnPurchaseInline(admin.TabularInline):
    model = AddOnPurchase
    form = InlineAddOnPurchaseForm
    formset = AddOnPurchaseFormSet
    extra = 0
    fields = ["add_on", "quantity", "started_on", "expires_on", "trial", "purchase_id", "cancelled_at", "suspended"]
    readonly_fields = ["purchase_id", "cancelled_at", "suspended"]


class ReasonForm(forms.Form):
    """What every action that changes access asks before it acts: why. The reason goes to the audit trail with the
    change (the rule of `audit.reasons`: blank or invisible text is no reason)."""

    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        max_length=1000,
        error_messages={"required": REASON_REQUIRED},
        help_text="Recorded in the audit trail with the change.",
    )

    def clean_reason(self):
        reason = reason_text(self.cleaned_data.get("reason"))
        if not reason:
            raise ValidationError(REASON_REQUIRED)
        return reason


class TransferForm(ReasonForm):
    transfer_to = forms.ModelChoiceField(
        queryset=Customer.objects.all(),
        widget=forms.NumberInput,
        label="Customer id",
        help_text="The customer whose activation code may bind the released instance, besides its own customer's.",
    )
    field_order = ["transfer_to", "reason"]


class AuditedAdmin(FleetScaleAdmin):
    """Form saves and deletes go through the services, so the audit trail sees them like any other change; the
    change page shows the object's recent events."""

    def change_view(self, request, object_id, form_url="", extra_context=None):
        obj = self.get_object(request, object_id)
        if obj is not None:
            extra_context = {**(extra_context or {}), **audit_context(obj)}
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change):
        services.object_save_from_form(obj)

    def delete_model(self, request, obj):
        services.object_delete_from_form(obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():  # all of the selection or none of it, as Django's own bulk delete
            for obj in queryset:
                services.object_delete_from_form(obj)

    def save_formset(self, request, form, formset, change):
        for obj in formset.save(commit=False):
            services.object_save_from_form(obj)
        for obj in formset.deleted_objects:
            services.object_delete_from_form(obj)
        formset.save_m2m()


@admin.register(Customer)
class CustomerAdmin(CsvExportAdmin, AuditedAdmin):
    list_display = ["name", "contact_email", "created_at"]
    csv_columns = (("id", "id"), ("name", "name"), ("contact email", "contact_email"), ("created at", "created_at"))
    search_fields = ["name", "contact_email"]
    search_help_text = "A contact email (exact), or part of the name."
    search_shapes = ((r"[^@\s]+@[^@\s]+", lambda customers, term: customers.filter(contact_email__iexact=term)),)

    def search_text(self, request, queryset, term):
        return queryset.filter(pk__in=customers_named(term))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        """The customer's hub: what they have and where it is used, each section bounded, with a link to its list."""
        customer = self.get_object(request, object_id)
        if customer is not None:
            extra_context = {
                **(extra_context or {}),
                **customer_overview(customer, timezone.now().date()),
                "customer_events": audit_events_of_customer(customer.pk),
                "see_all": {
                    "subscriptions": f"?customer__id__exact={customer.pk}",
                    "add_on_purchases": f"?subscription__customer__id__exact={customer.pk}",
                    "instances": f"?subscription__customer__id__exact={customer.pk}",
                    "seat_reports": f"?instance__subscription__customer__id__exact={customer.pk}",
                    "events": f"?customer_id={customer.pk}",
                },
            }
        return super().change_view(request, object_id, form_url, extra_context)


def _each(modeladmin, request, queryset, service, done: str):
    count = 0
    for obj in queryset:
        try:
            service(obj)
            count += 1
        except ValidationError as error:
            modeladmin.message_user(request, f"{obj}: {'; '.join(error.messages)}", messages.ERROR)
    modeladmin.message_user(request, f"{count} {done}.", messages.SUCCESS)


# The confirmation page lists this many of the selected objects (a "select all" may be the whole fleet).
CONFIRMATION_LISTED = 20


def confirmed_action(
    name: str, *, description: str, permission: str, explanation: str, act, done: str, form_class=ReasonForm
):
    """An admin action that acts only once confirmed: the first post shows a page with the selection, what the
    action does and a required reason; that page posts back to the action with `apply`, and each selected object
    goes through `act(obj, **form.cleaned_data)` (a service, which records the reason in the audit trail)."""

    @admin.action(description=description, permissions=[permission])
    def action(modeladmin, request, queryset):
        form = form_class(request.POST if "apply" in request.POST else None)
        if form.is_bound and form.is_valid():
            _each(modeladmin, request, queryset, lambda obj: act(obj, **form.cleaned_data), done)
            return None
        listed = list(queryset[: CONFIRMATION_LISTED + 1])
        return TemplateResponse(
            request,
            "admin/confirm_action.html",
            {
                **modeladmin.admin_site.each_context(request),
                "title": description.rstrip("…"),
                "explanation": explanation,
                "form": form,
                "action_name": name,
                "objects": listed[:CONFIRMATION_LISTED],
                "more": len(listed) > CONFIRMATION_LISTED,
                "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
                "select_across": request.POST.get("select_across", "0"),
                "opts": modeladmin.model._meta,
            },
        )

    action.__name__ = name
    return action


def _suspension_actions(set_suspended, plural: str, *, suspends: str, lifts: str, lift: str = "Lift the suspension of"):
    """Suspend and lift, confirmed with a reason, onto the model's `*_set_suspended` service; the admin's
    `has_suspend_permission` says who may."""
    return [
        confirmed_action(
            "suspend",
            description=f"Suspend the selected {plural}…",
            permission="suspend",
            explanation=suspends,
            act=lambda obj, reason: set_suspended(obj, True, reason=reason),
            done="suspended",
        ),
        confirmed_action(
            "unsuspend",
            description=f"{lift} the selected {plural}…",
            permission="suspend",
            explanation=lifts,
            act=lambda obj, reason: set_suspended(obj, False, reason=reason),
            done="unsuspended",
        ),
    ]


def as_word(field: str, word: str, description: str | None = None):
    """A boolean column read as a word or "—" (Django's red ✗ icon reads like an error)."""

    @admin.display(description=description or field.replace("_", " "), ordering=field)
    def shown(obj):
        return word if getattr(obj, field) else "—"

    shown.__name__ = f"{field}_word"
    return shown


class SubscriptionStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [(status, status) for status in SUBSCRIPTION_STATUSES]

    def queryset(self, request, queryset):
        if self.value() not in SUBSCRIPTION_STATUSES:
            return queryset
        return subscriptions_in_status(queryset, self.value(), timezone.now().date())


class InstanceStateFilter(admin.SimpleListFilter):
    """The dashboard's instance counts as lists: each card links here with its state."""

    title = "sync state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return list(INSTANCE_STATES.items())

    def queryset(self, request, queryset):
        if self.value() not in INSTANCE_STATES:
            return queryset
        return instances_in_state(queryset, self.value(), timezone.now())


class ExpiryFilter(admin.SimpleListFilter):
    """Forward-looking: what ends soon (Django's date filter only looks back), and what has ended."""

    title = "expires"
    parameter_name = "expires"
    WITHIN_DAYS = (30, 60, 90)

    def lookups(self, request, model_admin):
        return [*((str(days), f"in the next {days} days") for days in self.WITHIN_DAYS), ("expired", "expired")]

    def queryset(self, request, queryset):
        today = timezone.now().date()
        if self.value() == "expired":
            return queryset.filter(expires_on__lte=today)
        if self.value() in {str(days) for days in self.WITHIN_DAYS}:
            horizon = today + dt.timedelta(days=int(self.value()))
            return queryset.filter(expires_on__gt=today, expires_on__lte=horizon)
        return queryset


class RenewalForm(forms.Form):
    expires_on = forms.DateField(
        label="New end", widget=AdminDateWidget, help_text="First day without access (default: a year later)."
    )
    add_ons = forms.ModelMultipleChoiceField(
        queryset=AddOnPurchase.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Add-ons that move to the new end",
    )

    def __init__(self, *args, subscription: Subscription, **kwargs):
        moving, others = add_on_purchases_renewing_with(subscription)
        kwargs.setdefault("initial", {"expires_on": one_year_after(subscription.expires_on), "add_ons": moving})
        super().__init__(*args, **kwargs)
        self.subscription = subscription
        self.fields["add_ons"].queryset = subscription.add_on_purchases.filter(
            pk__in=[purchase.pk for purchase in moving + others]
        )
        ends = subscription.expires_on

        def label(purchase):
            when = "ends with the subscription" if purchase.expires_on == ends else f"ends {purchase.expires_on}"
            return f"{purchase.add_on} × {purchase.quantity} ({purchase.purchase_id}, {when})"

        self.fields["add_ons"].choices = [(purchase.pk, label(purchase)) for purchase in moving + others]

    def clean_expires_on(self):
        expires_on = self.cleaned_data["expires_on"]
        if expires_on <= self.subscription.expires_on:
            raise ValidationError(f"A renewal moves the end later than {self.subscription.expires_on}.")
        return expires_on


def _status_of_row(row: dict) -> str:
    """The status column of an exported subscription row, by the one rule (`subscription_status`)."""
    shape = Subscription(suspended=row["suspended"], starts_on=row["starts_on"], expires_on=row["expires_on"])
    return subscription_status(shape, timezone.now().date())


@admin.register(Subscription)
class SubscriptionAdmin(CsvExportAdmin, AuditedAdmin):
    form = SubscriptionForm
    csv_columns = (
        ("id", "id"),
        ("customer", "customer__name"),
        ("customer id", "customer_id"),
        ("license type", "license_type"),
        ("seats", "seats"),
        ("starts on", "starts_on"),
        ("expires on", "expires_on"),
        ("status", _status_of_row),
        ("trial", "trial"),
        ("suspended", "suspended"),
        ("activation code", "activation_code"),
    )
    list_display = [
        "customer",
        "license_type",
        "seats",
        "starts_on",
        "expires_on",
        "status",
        as_word("trial", "trial"),
        "activation_code",
    ]
    list_select_related = ["customer"]
    list_filter = [
        SubscriptionStatusFilter,
        ExpiryFilter,
        fixed_choices_filter("license_type", "license type", lambda: get_catalog().license_types),
        "trial",
    ]
    link_lookups = ("customer__id__exact",)  # "see all" on the customer's page
    search_fields = ["customer__name", "activation_code"]
    search_help_text = "An activation code (exact, for roles that see codes), or part of the customer's name."
    autocomplete_fields = ["customer"]
    readonly_fields = ["activation_code", "suspended", "created_at", "updated_at"]
    inlines = [AddOnPurchaseInline]
    actions = [
        *_suspension_actions(
            services.subscription_set_suspended,
            "subscriptions",
            suspends="Every instance bound to them loses access at its next sync: GitLab then deletes the tokens it "
            "holds, and its AI features stop until the suspension is lifted.",
            lifts="Their instances get tokens again at their next sync.",
        ),
        confirmed_action(
            "regenerate_activation_code",
            description="Regenerate the activation code…",
            permission="regenerate",
            explanation="Each current code stops working at once (an instance already bound keeps its license key); "
            "the new code is on the subscription's page.",
            act=services.subscription_regenerate_activation_code,
            done="codes regenerated",
        ),
    ]

    @admin.display(description="status")
    def status(self, subscription):
        return subscription_status(subscription, timezone.now().date())

    def _sees_codes(self, request) -> bool:
        return request.user.has_perm("subscriptions.view_activation_code")

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        return shown if self._sees_codes(request) else [name for name in shown if name != "activation_code"]

    def get_csv_columns(self, request):
        columns = super().get_csv_columns(request)
        return (
            columns if self._sees_codes(request) else [column for column in columns if column[1] != "activation_code"]
        )

    def get_search_shapes(self, request):
        if not self._sees_codes(request):
            return ()
        code = f"[{ACTIVATION_CODE_ALPHABET}]{{{ACTIVATION_CODE_LENGTH}}}"
        return ((code, lambda subscriptions, term: subscriptions.filter(activation_code=term.upper())),)

    def search_text(self, request, queryset, term):
        return queryset.filter(customer__in=customers_named(term))

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # Before saving there is no code: the one an unsaved form would show is not the one the save makes.
        hidden = {"activation_code", "suspended", "created_at", "updated_at"} if obj is None else set()
        if not self._sees_codes(request):
            hidden.add("activation_code")
        return [name for name in fields if name not in hidden]

    def has_suspend_permission(self, request):
        return request.user.has_perm("subscriptions.change_subscription")

    def has_renew_permission(self, request, obj=None):
        return self.has_change_permission(request, obj) and request.user.has_perm("subscriptions.change_addonpurchase")

    def has_regenerate_permission(self, request):
        return request.user.has_perm("subscriptions.regenerate_activation_code")

    def get_urls(self):
        renew = path(
            "<path:object_id>/renew/",
            self.admin_site.admin_view(self.renew_view),
            name="subscriptions_subscription_renew",
        )
        return [renew, *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        subscription = self.get_object(request, object_id)
        if subscription is not None:
            extra_context = {
                **(extra_context or {}),
                "status": subscription_status(subscription, timezone.now().date()),
                "ending_early": add_on_purchases_ending_early(subscription),
                "instances": Instance.objects.filter(subscription=subscription)
                .select_related("last_sync")
                .order_by("-activated_at", "-id"),
                "may_renew": self.has_renew_permission(request, subscription),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def renew_view(self, request, object_id):
        """*Renew / extend*: a new end, and the add-ons that move with it (by default those that end with the
        subscription; every other one offered)."""
        subscription = get_object_or_404(Subscription.objects.select_related("customer"), pk=object_id)
        if not self.has_renew_permission(request, subscription):
            raise PermissionDenied
        form = RenewalForm(request.POST or None, subscription=subscription)
        if request.method == "POST" and form.is_valid():
            try:
                services.subscription_extend(
                    subscription, expires_on=form.cleaned_data["expires_on"], add_ons=list(form.cleaned_data["add_ons"])
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                moved = len(form.cleaned_data["add_ons"])
                self.message_user(
                    request,
                    f"Renewed to {form.cleaned_data['expires_on']}, with {moved} add-on{'s' if moved != 1 else ''}.",
                    messages.SUCCESS,
                )
                return redirect("admin:subscriptions_subscription_change", subscription.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": "Renew / extend",
            "subtitle": str(subscription),
            "opts": self.opts,
            "original": subscription,
            "form": form,
            "media": self.media + form.media,
        }
        return TemplateResponse(request, "admin/subscriptions/subscription/renew.html", context)


@admin.register(AddOnPurchase)
class AddOnPurchaseAdmin(CsvExportAdmin, AuditedAdmin):
    form = AddOnPurchaseForm
    csv_columns = (
        ("purchase id", "purchase_id"),
        ("subscription id", "subscription_id"),
        ("customer", "subscription__customer__name"),
        ("add-on", "add_on"),
        ("seats", "quantity"),
        ("started on", "started_on"),
        ("expires on", "expires_on"),
        ("trial", "trial"),
        ("cancelled at", "cancelled_at"),
        ("suspended", "suspended"),
    )
    list_display = [
        "purchase_id",
        "subscription",
        "add_on",
        "quantity",
        "started_on",
        "expires_on",
        "cancelled_at",
        as_word("suspended", "suspended"),
    ]
    list_select_related = ["subscription__customer"]
    list_filter = [fixed_choices_filter("add_on", "add-on", lambda: get_catalog().add_ons), "trial", "suspended"]
    link_lookups = ("subscription__customer__id__exact",)  # "see all" on the customer's page
    search_fields = ["purchase_id", "subscription__customer__name"]
    search_help_text = "A purchase id (P-…, exact), or part of the customer's name."
    search_shapes = ((r"P-[0-9A-Fa-f]{12}", lambda purchases, term: purchases.filter(purchase_id=term.upper())),)

    def search_text(self, request, queryset, term):
        return queryset.filter(subscription__customer__in=customers_named(term))

    autocomplete_fields = ["subscription"]
    readonly_fields = ["purchase_id", "cancelled_at", "suspended"]
    actions = [
        confirmed_action(
            "cancel",
            description="Cancel the selected purchases now…",
            permission="change",
            explanation="Each purchase ends now, for good (a suspension can be lifted, a cancellation cannot): the "
            "next sync of its instance drops the add-on's scopes and Duo seats.",
            act=services.add_on_purchase_cancel,
            done="purchases cancelled",
        ),
        *_suspension_actions(
            services.add_on_purchase_set_suspended,
            "purchases",
            suspends="Each purchase stops counting until it is resumed: the next sync of its instance drops the "
            "add-on's scopes and Duo seats.",
            lifts="Each purchase counts again (within its dates): the next sync brings its scopes and seats back.",
            lift="Resume",
        ),
    ]

    def has_suspend_permission(self, request):
        return request.user.has_perm("subscriptions.change_addonpurchase")


@admin.register(Instance)
class InstanceAdmin(CsvExportAdmin, AuditedAdmin):
    csv_columns = (
        ("instance id", "instance_identifier"),
        ("host name", "hostname"),
        ("customer", "subscription__customer__name"),
        ("subscription id", "subscription_id"),
        ("gitlab version", "gitlab_version"),
        ("deployment type", "deployment_type"),
        ("unique instance id", "unique_instance_id"),
        ("license key prefix", "license_key_prefix"),
        ("activated at", "activated_at"),
        ("last sync at", "last_sync__at"),
        ("suspended", "suspended"),
        ("last error", "last_error"),
        ("last error at", "last_error_at"),
    )
    list_display = [
        short_id("instance_identifier", "instance id"),
        "hostname",
        "customer",
        "gitlab_version",
        "last_sync_at",
        as_word("suspended", "suspended"),
        "overview",
    ]
    list_select_related = ["subscription__customer", "last_sync"]
    list_filter = [
        InstanceStateFilter,
        "suspended",
        fixed_choices_filter("subscription__license_type", "license type", lambda: get_catalog().license_types),
    ]
    link_lookups = ("subscription__customer__id__exact",)  # "see all" on the customer's page
    search_help_text = (
        "An instance id or unique instance id (exact), a license-key prefix (cdl_…, exact), or part of the host name "
        "or of the customer's name."
    )
    search_shapes = (
        (
            UUID_SHAPE,
            lambda instances, term: (
                instances.filter(instance_identifier=term) | instances.filter(unique_instance_id=term)
            ),
        ),
        (r"cdl_[A-Za-z0-9_-]{1,6}", lambda instances, term: instances.filter(license_key_prefix=term)),
    )

    def search_text(self, request, queryset, term):
        return instances_matching_text(queryset, term)

    search_fields = [
        "=instance_identifier",
        "=unique_instance_id",
        "hostname",
        "subscription__customer__name",
        "license_key_prefix",
    ]
    fields = [
        "instance_identifier",
        "subscription",
        "hostname",
        "gitlab_version",
        "deployment_type",
        "unique_instance_id",
        "last_seen_instance_id",
        "license_key_prefix",
        "activated_at",
        "last_sync_at",
        "last_error",
        "last_error_at",
        "suspended",
    ]
    readonly_fields = fields
    actions = [
        *_suspension_actions(
            services.instance_set_suspended,
            "instances",
            suspends="A suspended instance gets no token: at its next sync GitLab deletes the tokens it holds, and its "
            "AI features stop until the suspension is lifted.",
            lifts="The instances get tokens again at their next sync.",
        ),
        confirmed_action(
            "release",
            description="Release the binding (the license key stops working, the code is free again)…",
            permission="release",
            explanation="Each license key stops working at once, and the subscription's code may bind an instance "
            "again; only the instance's own customer's code may bind this instance's id again.",
            act=services.instance_release,
            done="released",
        ),
        confirmed_action(
            "release_to",
            description="Release for a transfer to another customer…",
            permission="release",
            explanation="Each license key stops working at once; only the instance's own customer's code, or the "
            "code of the customer named here, may bind it again (until the reservation is lifted).",
            act=services.instance_release,
            done="released for the transfer",
            form_class=TransferForm,
        ),
        confirmed_action(
            "release_clear",
            description="Let any customer's code bind the released instance (lifts the release's reservation)…",
            permission="release",
            explanation="Any valid activation code may then bind these instances' ids, as for instances never "
            "activated.",
            act=services.instance_release_clear,
            done="opened to any customer's code",
        ),
    ]

    def has_suspend_permission(self, request):
        return request.user.has_perm("subscriptions.suspend_instance")

    def has_release_permission(self, request):
        return request.user.has_perm("subscriptions.release_instance")

    show_full_result_count = False

    def has_add_permission(self, request):
        return False  # instances come into being by activating

    @admin.display(ordering="subscription__customer__name")
    def customer(self, instance):
        return instance.subscription.customer if instance.subscription else "— (released)"

    @admin.display(ordering=F("last_sync__at").asc(nulls_first=True), description="last sync at", empty_value="never")
    def last_sync_at(self, instance):
        """Never synced sorts as the oldest, on every database."""
        return instance.last_sync_at

    @admin.display(description="Overview")
    def overview(self, instance):
        return format_html(
            '<a href="{}">Entitlements, scopes, tokens</a>', reverse("admin:issuer_instance", args=[instance.pk])
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "overview_url": reverse("admin:issuer_instance", args=[object_id])}
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(SeatReport)
class SeatReportAdmin(CsvExportAdmin, FleetScaleAdmin):
    csv_columns = (
        ("instance id", "instance__instance_identifier"),
        ("host name", "instance__hostname"),
        ("reported at", "reported_at"),
        ("received at", "received_at"),
        ("gitlab version", "gitlab_version"),
        ("billable users", "billable_users"),
        ("max historical users", "max_historical_users"),
        ("overage", "has_overage"),
    )
    list_display = [
        "instance",
        "reported_at",
        "billable_users",
        "max_historical_users",
        as_word("has_overage", "overage", "overage"),
    ]
    list_select_related = ["instance"]
    list_filter = ["has_overage"]
    link_lookups = ("instance__subscription__customer__id__exact",)  # "see all" on the customer's page
    search_fields = ["=instance__instance_identifier"]
    search_help_text = "An instance id (exact)."
    search_shapes = (
        (
            UUID_SHAPE,
            lambda reports, term: reports.filter(instance__in=Instance.objects.filter(instance_identifier=term)),
        ),
    )
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
