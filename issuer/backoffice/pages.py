"""The back office's own pages (instance, catalog, keys, inspect token): staff-only through the admin site's
`admin_view` (login, CSRF), and each behind the permission of what it shows or does (subscriptions/roles.py).
No page renders a private key, a token or a license key: the instance page shows token records (jti, kid, scopes,
times), the inspect form shows claims."""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.decorators import permission_required
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils import timezone

from audit.reasons import reason_text
from audit.selectors import audit_context, audit_events_of_type
from issuer.backoffice import selectors
from issuer.backoffice.charts import key_timeline_chart
from issuer.conf import issuer_settings
from issuer.keys.selectors import (
    signing_key_refusal,
    signing_key_revocation_outcome,
    signing_key_timeline,
    validator_rows,
)
from issuer.keys.services import (
    SIGNING_KEY_ACTIONS,
    SigningKeyRefused,
    SigningKeyTooEarly,
    signing_key_act,
    signing_key_create,
)
from issuer.models import SigningKey
from subscriptions.models import Instance


def _page(request, template, title, **context):
    return TemplateResponse(request, template, {**admin.site.each_context(request), "title": title, **context})


@permission_required("subscriptions.view_instance", raise_exception=True)
def instance_overview(request, pk):
    instance = get_object_or_404(Instance.objects.select_related("subscription__customer", "last_sync"), pk=pk)
    return _page(
        request,
        "admin/issuer/instance.html",
        f"Instance {instance.hostname or instance.instance_identifier}",
        instance=instance,
        **selectors.instance_overview(instance, timezone.now()),
        **audit_context(instance),
    )


def catalog_page(request):
    return _page(
        request, "admin/issuer/catalog.html", "Unit-primitive catalog", **selectors.catalog_overview(timezone.now())
    )


@permission_required("issuer.view_signingkey", raise_exception=True)
def keys_page(request):
    now = timezone.now()
    timeline, validators = signing_key_timeline(), validator_rows(now)
    return _page(
        request,
        "admin/issuer/keys.html",
        "Signing keys",
        timeline=timeline,
        timeline_chart=key_timeline_chart(timeline, validators, now),
        validators=validators,
        forget_days=issuer_settings.VALIDATOR_FORGET_DAYS,
        events=audit_events_of_type("signingkey"),
        events_query="?object_type=signingkey",
        show_object=True,
    )


@permission_required("issuer.operate_signingkey", raise_exception=True)
def key_create(request):
    if request.method == "POST":
        key = signing_key_create()
        messages.success(request, f"Created pending key {key.kid}; it is published now and may sign after the lead.")
    return redirect("admin:issuer_keys")


class KeyActionForm(forms.Form):
    force = forms.BooleanField(
        required=False, label="Force: act now although the policy would refuse (validators may not know the key)"
    )
    reason = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded in the audit trail. Required for a revoke and for a forced step.",
    )

    def __init__(self, *args, reason_required: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.reason_required = reason_required

    def clean_reason(self):
        return reason_text(self.cleaned_data.get("reason"))

    def clean(self):
        cleaned = super().clean()
        if (self.reason_required or cleaned.get("force")) and not cleaned.get("reason"):
            self.add_error("reason", "Say why: a revoke or a forced step is recorded with its reason.")
        return cleaned


@permission_required("issuer.operate_signingkey", raise_exception=True)
def key_action(request, kid, action):
    """Confirms one lifecycle step; the service decides, and its refusal (e.g. too early without force) is shown."""
    if action not in SIGNING_KEY_ACTIONS:
        return redirect("admin:issuer_keys")
    key = get_object_or_404(SigningKey, kid=kid)
    form = KeyActionForm(
        request.POST if request.method == "POST" else None, reason_required=SIGNING_KEY_ACTIONS[action].needs_reason
    )
    if request.method == "POST" and form.is_valid():
        try:
            signing_key_act(action, kid, force=form.cleaned_data["force"], reason=form.cleaned_data["reason"])
        except SigningKeyTooEarly as error:
            messages.error(request, f"{error.reason} Tick “Force” to act anyway.")
        except SigningKeyRefused as error:
            messages.error(request, str(error))
        else:
            messages.success(request, f"{action.capitalize()}: {kid} done.")
            if action == "revoke" and signing_key_revocation_outcome()["remint"] == "pending":
                messages.warning(request, "The token re-mint could not be queued; the next refresh run does it.")
            return redirect("admin:issuer_keys")
    return _page(
        request,
        "admin/issuer/key_action.html",
        f"{action.capitalize()} key {kid[:12]}…",
        key=key,
        action=action,
        description=SIGNING_KEY_ACTIONS[action].description,
        refusal=signing_key_refusal(key, action, timezone.now()),
        form=form,
        **audit_context(key),
    )


class InspectTokenForm(forms.Form):
    token = forms.CharField(
        label="ServiceAccessToken",
        widget=forms.Textarea(attrs={"rows": 6, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Verified against the published keys; the token itself is not stored or shown again.",
    )
    audience = forms.CharField(label="Audience to require (optional)", required=False)


@permission_required("issuer.view_issuedtoken", raise_exception=True)
def inspect_token(request):
    form = InspectTokenForm(request.POST or None)
    inspection = None
    if request.method == "POST" and form.is_valid():
        inspection = selectors.token_inspect(
            form.cleaned_data["token"].strip(), form.cleaned_data["audience"] or None, timezone.now()
        )
        form = InspectTokenForm(initial={"audience": form.cleaned_data["audience"]})  # never echo the token
    return _page(request, "admin/issuer/inspect_token.html", "Inspect a token", form=form, inspection=inspection)
