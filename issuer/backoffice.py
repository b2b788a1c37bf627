"""The back office: Django admin with a dashboard, and the instance, catalog, keys and inspect-token pages.

Every page is staff-only through `AdminSite.admin_view` (login, CSRF). No page renders a private key, a token
or a license key: the instance page shows token records (jti, kid, scopes, times), the inspect form shows claims.
"""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone

from issuer import selectors, services
from issuer.models import SigningKey
from subscriptions.models import Instance
from subscriptions.selectors import (
    add_on_purchases_expiring,
    instance_entitlements,
    seat_reports_latest_with_overage,
    subscriptions_expiring,
)
from unit_primitives.catalog import get_catalog

KEY_ACTIONS = {
    "activate": "Activate (start signing; the active key retires)",
    "retire": "Retire (stop using this pending key; it stays published through the overlap)",
    "revoke": "Revoke (emergency: withdraw from the JWKS at once and re-mint every token)",
    "purge": "Purge (remove from the JWKS for good)",
}


class IssuerAdminSite(admin.AdminSite):
    site_header = "Cloud Connector issuer"
    site_title = "Issuer back office"
    index_title = "Dashboard"
    index_template = "admin/issuer/dashboard.html"

    def get_urls(self):
        own = [
            path("catalog/", self.admin_view(catalog_page), name="issuer_catalog"),
            path("keys/", self.admin_view(keys_page), name="issuer_keys"),
            path("keys/create/", self.admin_view(key_create), name="issuer_key_create"),
            path("keys/<str:kid>/<str:action>/", self.admin_view(key_action), name="issuer_key_action"),
            path("inspect-token/", self.admin_view(inspect_token), name="issuer_inspect_token"),
            path("instances/<int:pk>/overview/", self.admin_view(instance_overview), name="issuer_instance"),
        ]
        return own + super().get_urls()

    def index(self, request, extra_context=None):
        now = timezone.now()
        context = {
            "summary": selectors.dashboard_summary(now),
            "timeline": selectors.signing_key_timeline(),
            "expiring_subscriptions": subscriptions_expiring(30, now.date())[:20],
            "expiring_add_ons": add_on_purchases_expiring(30, now.date())[:20],
            "overage_reports": seat_reports_latest_with_overage()[:20],
            "latest_instances": Instance.objects.select_related("subscription__customer").order_by("-activated_at")[:5],
            **(extra_context or {}),
        }
        return super().index(request, context)


def _page(request, template, title, **context):
    return TemplateResponse(request, template, {**admin.site.each_context(request), "title": title, **context})


def instance_overview(request, pk):
    instance = get_object_or_404(Instance.objects.select_related("subscription__customer"), pk=pk)
    entitlements = instance_entitlements(instance)
    tokens = list(instance.issued_tokens.order_by("-issued_at")[:20])
    newest_scopes = set(tokens[0].scopes) if tokens else set()
    granted = set(entitlements.grant.scopes)
    reports = list(instance.seat_reports.order_by("-reported_at")[:30])[::-1]
    return _page(
        request,
        "admin/issuer/instance.html",
        f"Instance {instance.hostname or instance.instance_identifier}",
        instance=instance,
        entitlements=entitlements,
        diagnosis=selectors.instance_diagnosis(instance, timezone.now()),
        scope_rows=[
            {"name": name, "granted": name in granted, "in_token": (name in newest_scopes) if tokens else None}
            for name in sorted(granted | newest_scopes)
        ],
        tokens=tokens,
        reports=reports[::-1],
        chart=_seat_chart(reports),
    )


def _seat_chart(reports, width=640, height=160, pad=24):
    """Assigned vs purchased seats over time as two SVG polylines; None without at least one report."""
    if not reports:
        return None
    assigned = [sum(m.get("assigned_seats", 0) for m in r.add_on_metrics) for r in reports]
    purchased = [sum(m.get("purchased_seats", 0) for m in r.add_on_metrics) for r in reports]
    top = max(assigned + purchased + [1])
    step = (width - 2 * pad) / max(len(reports) - 1, 1)

    def points(values):
        return " ".join(
            f"{pad + i * step:.1f},{height - pad - (v / top) * (height - 2 * pad):.1f}" for i, v in enumerate(values)
        )

    return {
        "width": width,
        "height": height,
        "assigned": points(assigned),
        "purchased": points(purchased),
        "top": top,
        "first": reports[0].reported_at,
        "last": reports[-1].reported_at,
        "latest_assigned": assigned[-1],
        "latest_purchased": purchased[-1],
    }


def catalog_page(request):
    catalog = get_catalog()
    now = timezone.now()
    rows = []
    for primitive in catalog.unit_primitives.values():
        free = primitive.cut_off_date is None or now < primitive.cut_off_date
        rows.append({"primitive": primitive, "free": free})
    by_add_on = {name: [] for name in catalog.add_ons}
    for primitive in catalog.unit_primitives.values():
        for add_on in primitive.add_ons:
            by_add_on[add_on].append(primitive.name)
    by_service = {
        service: sorted(p.name for p in catalog.unit_primitives.values() if service in p.backend_services)
        for service in catalog.backend_services
    }
    return _page(
        request,
        "admin/issuer/catalog.html",
        "Unit-primitive catalog",
        rows=rows,
        by_add_on=by_add_on,
        by_service=by_service,
        backend_services=catalog.backend_services,
        digest=catalog.digest,
    )


def keys_page(request):
    return _page(request, "admin/issuer/keys.html", "Signing keys", timeline=selectors.signing_key_timeline())


def key_create(request):
    if request.method == "POST":
        key = services.signing_key_create()
        messages.success(request, f"Created pending key {key.kid}; it is published now and may sign after the lead.")
    return redirect("admin:issuer_keys")


class KeyActionForm(forms.Form):
    force = forms.BooleanField(
        required=False, label="Force: act now although the policy would refuse (validators may not know the key)"
    )


def key_action(request, kid, action):
    if action not in KEY_ACTIONS:
        return redirect("admin:issuer_keys")
    key = get_object_or_404(SigningKey, kid=kid)
    refusal = services.signing_key_too_early(key, action)
    form = KeyActionForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        force = form.cleaned_data["force"]
        if refusal and not force and action in ("activate", "purge"):
            messages.error(request, f"{refusal} Tick “Force” to act anyway.")
        else:
            try:
                _run(action, kid, force)
            except services.SigningKeyRefused as error:
                messages.error(request, str(error))
            else:
                messages.success(request, f"{action.capitalize()}: {kid} done.")
                return redirect("admin:issuer_keys")
    return _page(
        request,
        "admin/issuer/key_action.html",
        f"{action.capitalize()} key {kid[:12]}…",
        key=key,
        action=action,
        description=KEY_ACTIONS[action],
        refusal=refusal,
        form=form,
    )


def _run(action: str, kid: str, force: bool) -> None:
    if action == "activate":
        services.signing_key_activate(kid, force=force)
    elif action == "retire":
        services.signing_key_retire(kid)
    elif action == "revoke":
        services.signing_key_revoke(kid)
    else:
        services.signing_key_purge(kid, force=force)


class InspectTokenForm(forms.Form):
    token = forms.CharField(
        label="ServiceAccessToken",
        widget=forms.Textarea(attrs={"rows": 6, "autocomplete": "off", "spellcheck": "false"}),
        help_text="Verified against the published keys; the token itself is not stored or shown again.",
    )
    audience = forms.CharField(label="Audience to require (optional)", required=False)


def inspect_token(request):
    form = InspectTokenForm(request.POST or None)
    claims = error = None
    if request.method == "POST" and form.is_valid():
        try:
            claims = selectors.verify_service_access_token(
                form.cleaned_data["token"].strip(), audience=form.cleaned_data["audience"] or None
            )
        except selectors.TokenInvalid as invalid:
            error = str(invalid)
        form = InspectTokenForm(initial={"audience": form.cleaned_data["audience"]})  # never echo the token
    return _page(request, "admin/issuer/inspect_token.html", "Inspect a token", form=form, claims=claims, error=error)
