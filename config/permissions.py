"""DRF permission classes of the admin API (kept apart from config/api.py, which DRF's own settings import)."""

from rest_framework import permissions


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django's model permissions, reads included: a staff account with no role sees nothing (the roles are in
    subscriptions/roles.py)."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


def permission(codename: str) -> type[permissions.BasePermission]:
    """A permission class requiring one Django permission, for actions no model permission describes."""

    class HasPermission(permissions.BasePermission):
        def has_permission(self, request, view):
            return bool(request.user and request.user.is_staff and request.user.has_perm(codename))

    HasPermission.__name__ = f"Has_{codename.replace('.', '_')}"
    return HasPermission


# A role (subscriptions/roles.py): every role reads the fleet. The API schema and its docs map every admin operation,
# so a staff account without a role may not read them (SPECTACULAR_SETTINGS["SERVE_PERMISSIONS"]).
HasARole = permission("subscriptions.view_instance")
HasARole.__name__ = "HasARole"
