"""Read-only admin views of keys and tokens: neither private key nor token is ever shown."""

from django import forms
from django.contrib import admin
from django.utils import timezone
from knox import admin as knox_admin
from knox.models import AuthToken
from knox.settings import knox_settings

from config.admin_base import UUID_SHAPE, FleetScaleAdmin, ReadOnlyAdmin, fixed_choices_filter, short_id
from config.admin_export import CsvExportAdmin
from issuer.keys.selectors import SIGNING_KEY_FIELDS
from issuer.keys.services import validator_confirm, validator_forget, validator_rename
from issuer.models import IssuedToken, SigningKey, Validator
from issuer.tokens.selectors import TOKEN_REASONS, tokens_with_uuid


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    list_display = ["kid", "state", "backend", "key_size", "created_at", "activated_at", "retired_at", "revoked_at"]
    list_filter = ["state", "backend"]
    fields = SIGNING_KEY_FIELDS


@admin.register(IssuedToken)
class IssuedTokenAdmin(CsvExportAdmin, ReadOnlyAdmin, FleetScaleAdmin):
    """Token records (never the token): the export has what the list shows, with the scopes granted."""

    csv_columns = (
        ("jti", "jti"),
        ("instance id", "instance__instance_identifier"),
        ("kid", "kid"),
        ("issued at", "issued_at"),
        ("expires at", "expires_at"),
        ("reason", "reason"),
        ("duo seats", "duo_seat_count"),
        ("scopes", lambda row: " ".join(row["scopes"] or ())),
    )
    csv_inputs = ("scopes",)
    list_display = [short_id("jti"), "instance", short_id("kid", "key id"), "issued_at", "expires_at", "reason"]
    list_select_related = ["instance"]
    list_filter = [fixed_choices_filter("reason", "reason", TOKEN_REASONS), ("issued_at", admin.DateFieldListFilter)]
    search_fields = ["=jti", "=instance__instance_identifier", "=kid"]
    search_help_text = "A jti or an instance id (a UUID), or a key id; each exact."
    search_shapes = (
        (UUID_SHAPE, tokens_with_uuid),
        (r"[A-Za-z0-9_-]{43}", lambda tokens, term: tokens.filter(kid=term)),
    )
    fields = [field.name for field in IssuedToken._meta.concrete_fields if field.name != "token_encrypted"]


class ApiTokenCreateForm(knox_admin.AuthTokenCreateForm):
    """A new admin API token always expires: by default after the TTL (REST_KNOX TOKEN_TTL, API_TOKEN_TTL_DAYS), never
    later, and never with a blank expiry (knox's own form would store a token that never expires)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["expiry"]
        field.required = True
        field.initial = lambda: timezone.now() + knox_settings.TOKEN_TTL
        field.help_text = f"At most {knox_settings.TOKEN_TTL.days} days from now (the default)."

    def clean_expiry(self):
        expiry = self.cleaned_data.get("expiry")
        now = timezone.now()
        if expiry is None:
            raise forms.ValidationError("A token must expire.")
        if expiry <= now:
            raise forms.ValidationError("The expiry must be in the future.")
        if expiry > now + knox_settings.TOKEN_TTL:
            raise forms.ValidationError(f"A token lives at most {knox_settings.TOKEN_TTL.days} days.")
        return expiry


class ApiTokenAdmin(knox_admin.AuthTokenAdmin):
    """Admin API tokens listed by their prefix and owner: the token itself is shown once, when created, and only its
    digest is stored. Each expires within the TTL (ApiTokenCreateForm)."""

    add_form = ApiTokenCreateForm
    list_display = ["token_key", "user", "created", "expiry"]
    search_fields = ["token_key", "user__username"]


admin.site.unregister(AuthToken)
admin.site.register(AuthToken, ApiTokenAdmin)


@admin.register(Validator)
class ValidatorAdmin(admin.ModelAdmin):
    """Clients of the JWKS: the operator names one and confirms it (only confirmed validators hold key activation
    back), or forgets it (delete); each through the services, recorded."""

    list_display = ["__str__", "confirmed", "address", "last_seen_at", "last_jwks_at", "kids"]
    list_filter = ["confirmed"]
    search_fields = ["=address", "name"]
    fields = ["name", "confirmed", "user_agent", "address", "first_seen_at", "last_seen_at", "last_jwks_at", "kids"]
    readonly_fields = fields[2:]

    def has_add_permission(self, request):
        return False

    def save_model(self, request, obj, form, change):
        validator_rename(obj, obj.name)
        validator_confirm(obj, obj.confirmed)

    def delete_model(self, request, obj):
        validator_forget(obj, reason=f"forgotten in the admin by {request.user.get_username()}")

    def delete_queryset(self, request, queryset):
        for validator in queryset:
            self.delete_model(request, validator)
