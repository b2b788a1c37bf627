"""The admin site: Django admin with the issuer's dashboard as its index and the issuer's own pages."""

from django.contrib import admin
from django.urls import path
from django.utils import timezone

from config.admin_base import strict_lookups
from issuer.backoffice import pages
from issuer.backoffice.selectors import dashboard


class IssuerAdminSite(admin.AdminSite):
    site_header = "Cloud Connector issuer"
    site_title = "Issuer back office"
    index_title = "Dashboard"
    index_template = "admin/issuer/dashboard.html"

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every admin registered here, ours and the libraries', answers only the lookups its page offers."""
        super().register(model_or_iterable, strict_lookups(admin_class or admin.ModelAdmin), **options)

    def get_urls(self):
        own = [
            path("catalog/", self.admin_view(pages.catalog_page), name="issuer_catalog"),
            path("keys/", self.admin_view(pages.keys_page), name="issuer_keys"),
            path("keys/create/", self.admin_view(pages.key_create), name="issuer_key_create"),
            path("keys/<str:kid>/<str:action>/", self.admin_view(pages.key_action), name="issuer_key_action"),
            path("inspect-token/", self.admin_view(pages.inspect_token), name="issuer_inspect_token"),
            path("instances/<int:pk>/overview/", self.admin_view(pages.instance_overview), name="issuer_instance"),
        ]
        return own + super().get_urls()

    # Django's own and the libraries' apps, grouped under "System" after the business (subscriptions, issuer, audit).
    SYSTEM_APPS = ("auth", "axes", "knox")

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        system = [app for app in apps if app["app_label"] in self.SYSTEM_APPS]
        business = [app for app in apps if app["app_label"] not in self.SYSTEM_APPS]
        if not system:
            return business
        models = [{**model, "name": f"{model['name']} ({app['name']})"} for app in system for model in app["models"]]
        group = {
            "name": "System",
            "app_label": "system",
            "app_url": "#system",
            "has_module_perms": True,
            "models": sorted(models, key=lambda model: model["name"]),
        }
        return [*business, group]

    def index(self, request, extra_context=None):
        """The dashboard for anyone who may read the fleet; a staff account without a role sees only that."""
        if not request.user.has_perm("subscriptions.view_instance"):
            return super().index(request, {"no_role": True, **(extra_context or {})})
        return super().index(request, {**dashboard(timezone.now()), **(extra_context or {})})
