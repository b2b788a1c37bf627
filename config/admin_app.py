from django.contrib.admin.apps import AdminConfig


class IssuerAdminConfig(AdminConfig):
    """Django admin, with the issuer's back office site (dashboard and custom pages) as the default site."""

    default_site = "issuer.backoffice.site.IssuerAdminSite"
