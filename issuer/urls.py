from django.urls import include, path
from rest_framework.routers import SimpleRouter

from issuer import admin_api, graphql_api, views

router = SimpleRouter()
router.register("signing_keys", admin_api.SigningKeyViewSet)

urlpatterns = [
    path(".well-known/openid-configuration", views.openid_configuration, name="openid-configuration"),
    path("oauth/discovery/keys", views.jwks, name="jwks"),
    path("graphql", graphql_api.graphql_view, name="graphql"),
    path("api/v1/service_access_tokens", views.ServiceAccessTokenView.as_view(), name="service-access-tokens"),
    path("api/v1/admin/", include(router.urls)),
]
