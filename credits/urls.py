from django.urls import path

from credits import admin_api, views

urlpatterns = [
    path("com.snowplowanalytics.snowplow/tp2", views.collector_batch, name="credits-collector-batch"),
    path("i", views.collector_pixel, name="credits-collector-pixel"),
    path("api/v1/consumers/resolve", views.consumers_resolve, name="credits-consumers-resolve"),
    path("api/v1/admin/credits/grants/", admin_api.GrantCreateView.as_view(), name="credits-grants"),
    path(
        "api/v1/admin/credits/subscriptions/<int:pk>/statement/",
        admin_api.StatementView.as_view(),
        name="credits-statement",
    ),
    path(
        "api/v1/admin/credits/subscriptions/<int:pk>/overage/", admin_api.OverageView.as_view(), name="credits-overage"
    ),
    path("api/v1/admin/credits/subscriptions/<int:pk>/caps/", admin_api.CapsView.as_view(), name="credits-caps"),
    path(
        "api/v1/admin/credits/subscriptions/<int:pk>/caps/users/",
        admin_api.CapOverrideView.as_view(),
        name="credits-cap-overrides",
    ),
]
