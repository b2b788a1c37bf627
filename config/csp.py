"""django-csp's middleware, skipped for the machine doors: their answers are JSON (served with nosniff), which no
browser renders as a page, and building the policy cost a sync about 0.15 ms, on every request of the hot path."""

from csp.middleware import CSPMiddleware

# The instance-facing doors and the public key documents: JSON only.
MACHINE_PATHS = (
    "/graphql",
    "/api/v1/service_access_tokens",
    "/api/v1/seat_links",
    "/oauth/discovery/keys",
    "/.well-known/openid-configuration",
    "/healthz",
    "/readyz",
    "/metrics",
    "/com.snowplowanalytics.snowplow/tp2",
    "/i",
    "/api/v1/consumers/resolve",
)


class PagesOnlyCSPMiddleware(CSPMiddleware):
    def process_response(self, request, response):
        if request.path_info in MACHINE_PATHS:
            return response
        return super().process_response(request, response)
