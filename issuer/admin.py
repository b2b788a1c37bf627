"""Read-only admin views of keys and tokens: neither private key nor token is ever shown."""

from django.contrib import admin
from knox import admin as knox_admin
from knox.models import AuthToken

from config.admin_base import ReadOnlyAdmin
from issuer.keys.selectors import SIGNING_KEY_FIELDS
from issuer.models import IssuedToken, SigningKey


@admin.register(SigningKey)
class SigningKeyAdmin(ReadOnlyAdmin):
    list_display = ["kid", "state", "key_size", "created_at", "activated_at", "retired_at", "revoked_at"]
    list_filter = ["state"]
    fields = SIGNING_KEY_FIELDS


@admin.register(IssuedToken)
class IssuedTokenAdmin(ReadOnlyAdmin):
    list_display = ["jti", "instance", "kid", "issued_at", "expires_at", "reason"]
    list_select_related = ["instance"]
    list_filter = ["reason"]
    search_fields = ["=jti", "=instance__instance_identifier", "=kid"]
    fields = [field.name for field in IssuedToken._meta.concrete_fields if field.name != "token_encrypted"]
    show_full_result_count = False


class ApiTokenAdmin(knox_admin.AuthTokenAdmin):
    """Admin API tokens listed by their prefix and owner: the token itself is shown once, when created, and only its
    digest is stored."""

    list_display = ["token_key", "user", "created", "expiry"]
    search_fields = ["token_key", "user__username"]


admin.site.unregister(AuthToken)
admin.site.register(AuthToken, ApiTokenAdmin)
