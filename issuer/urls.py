from django.urls import include, path
from rest_framework.routers import SimpleRouter

from issuer.api import admin_keys, graphql, public, rest

router = SimpleRouter()
router.register("signing_keys", admin_keys.SigningKeyViewSet)

urlpatterns = [
    path(".well-known/openid-configuration", public.openid_configuration, name="openid-configuration"),
    path("oauth/discovery/keys", public.jwks, name="jwks"),
    path("graphql", graphql.graphql_view, name="graphql"),
    path("api/v1/service_access_tokens", rest.ServiceAccessTokenView.as_view(), name="service-access-tokens"),
    path("api/v1/admin/", include(router.urls)),
]
