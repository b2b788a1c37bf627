from django.urls import path

from issuer import graphql_api, views

urlpatterns = [
    path(".well-known/openid-configuration", views.openid_configuration, name="openid-configuration"),
    path("oauth/discovery/keys", views.jwks, name="jwks"),
    path("graphql", graphql_api.graphql_view, name="graphql"),
    path("api/v1/service_access_tokens", views.ServiceAccessTokenView.as_view(), name="service-access-tokens"),
]
