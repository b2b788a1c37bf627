"""The back-office roles, as Django groups of permissions (created by a data migration, kept in step by
`roles_sync`). Every door checks permissions, never `is_staff` alone: Django admin through model permissions,
the issuer's pages and the admin API through the same codenames.

- viewer: reads everything except activation codes (the audit trail and the credits ledger included);
- support: viewer, plus suspend/lift instances, release bindings, see and regenerate activation codes;
- billing: support, plus create and change customers, subscriptions (suspension included) and purchases, grant
  credits and allow or stop overage;
- key operator: viewer, plus the signing-key lifecycle;
- quota service: the AI gateway's service account for the quota check (`X-Admin-Email`/`X-Admin-Token`), nothing
  else;
- superuser: everything (Django's own flag).
"""

VIEWER = [
    "subscriptions.view_customer",
    "subscriptions.view_subscription",
    "subscriptions.view_addonpurchase",
    "subscriptions.view_instance",
    "subscriptions.view_seatreport",
    "subscriptions.view_instanceidsighting",
    "issuer.view_signingkey",
    "issuer.view_issuedtoken",
    "issuer.view_validator",
    "audit.view_auditevent",
    "credits.view_creditgrant",
    "credits.view_creditaccount",
    "credits.view_usageevent",
]
SUPPORT = [
    *VIEWER,
    "subscriptions.view_activation_code",
    "subscriptions.regenerate_activation_code",
    "subscriptions.suspend_instance",
    "subscriptions.release_instance",
]
BILLING = [
    *SUPPORT,
    "subscriptions.add_customer",
    "subscriptions.change_customer",
    "subscriptions.add_subscription",
    "subscriptions.change_subscription",
    "subscriptions.add_addonpurchase",
    "subscriptions.change_addonpurchase",
    "credits.add_creditgrant",
    "credits.add_creditaccount",
    "credits.change_creditaccount",
    "credits.add_usercapoverride",
    "credits.change_usercapoverride",
    "credits.view_usercapoverride",
]
KEY_OPERATOR = [*VIEWER, "issuer.operate_signingkey", "issuer.change_validator", "issuer.delete_validator"]

# The AI gateway's and the Duo Workflow Service's service account: asks the quota check, nothing else (no staff).
QUOTA_SERVICE = ["credits.resolve_consumers"]

ROLES = {
    "viewer": VIEWER,
    "support": SUPPORT,
    "billing": BILLING,
    "key operator": KEY_OPERATOR,
    "quota service": QUOTA_SERVICE,
}


def roles_sync(apps) -> None:
    """Creates the groups and sets exactly their permissions (idempotent; `apps` is a migration's registry)."""
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0)
        app_config.models_module = None
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        wanted = []
        for dotted in codenames:
            app_label, codename = dotted.split(".")
            # An older migration runs before a later app's models exist: that app's own roles migration grants them.
            found = permission_model.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if found is not None:
                wanted.append(found)
        group.permissions.set(wanted)
