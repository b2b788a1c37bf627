"""The one place that says which paths are machine doors, and the lean middleware stack they run.

Machine doors are the paths instances, gateways and scrapers call: they answer JSON only, authenticate with what
the request carries (a license key, a network, a bearer token), never with a session, and render no page. They
skip the middleware that exists for people: sessions, CSRF, authentication, messages, X-Frame-Options, the login
lockout (axes) and the page's content security policy (django-csp). They keep the rest of `MIDDLEWARE` in its
order: metrics, the request id, the security headers (nosniff, referrer policy, HSTS behind TLS), WhiteNoise,
CommonMiddleware, the audit frame (an activation's event keeps its request id and address) and the 503 of an
unreachable database.

Each skipped middleware is named in `MIDDLEWARE` by its pages-only form below (`pages_only`), at its usual place:
for a page nothing changes; for a machine door it hands the request on untouched. A door added to `MACHINE_PATHS`
must not read `request.user`, `request.session` or messages (a test walks every one of them without).
"""

from axes.middleware import AxesMiddleware
from csp.middleware import CSPMiddleware
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware

MACHINE_PATHS = frozenset(
    {
        "/graphql",  # GitLab: activation, sync, usage read-back
        "/api/v1/service_access_tokens",  # GitLab: the REST token endpoint
        "/api/v1/seat_links",  # GitLab: seat reports
        "/oauth/discovery/keys",  # AI gateways: JWKS
        "/.well-known/openid-configuration",  # AI gateways: discovery
        "/com.snowplowanalytics.snowplow/tp2",  # the AI gateway's usage events (credits collector)
        "/i",  # the same, as a pixel
        "/api/v1/consumers/resolve",  # the AI gateway's quota door
        "/healthz",  # probes and scrapers
        "/readyz",
        "/metrics",
    }
)


def machine_door(request) -> bool:
    return request.path_info in MACHINE_PATHS


def pages_only(middleware_class):
    """`middleware_class` run for pages only: on a machine door its request, view, exception and response hooks are
    all passed by (Django collects `process_view` and `process_exception` apart from `__call__`)."""

    class PagesOnly(middleware_class):
        sync_capable, async_capable = True, False  # WSGI only (gunicorn); Django adapts if ever served async

        def __call__(self, request):
            if machine_door(request):
                return self.get_response(request)
            return super().__call__(request)

    for hook in ("process_view", "process_exception"):
        if hasattr(middleware_class, hook):
            setattr(PagesOnly, hook, _pages_only_hook(getattr(middleware_class, hook)))
    PagesOnly.__name__ = PagesOnly.__qualname__ = f"PagesOnly{middleware_class.__name__}"
    PagesOnly.__doc__ = f"{middleware_class.__name__}, for pages only (config.machine_doors)."
    return PagesOnly


def _pages_only_hook(hook):
    def pages_only_hook(self, request, *args):
        return None if machine_door(request) else hook(self, request, *args)

    return pages_only_hook


# What pages need and machine doors skip; config.E009 checks each is in MIDDLEWARE (as itself or its pages-only form).
PEOPLE_ONLY_MIDDLEWARE = (
    SessionMiddleware,
    CsrfViewMiddleware,
    AuthenticationMiddleware,
    MessageMiddleware,
    XFrameOptionsMiddleware,
    CSPMiddleware,
    AxesMiddleware,
)
PagesOnlySessionMiddleware = pages_only(SessionMiddleware)
PagesOnlyCsrfViewMiddleware = pages_only(CsrfViewMiddleware)
PagesOnlyAuthenticationMiddleware = pages_only(AuthenticationMiddleware)
PagesOnlyMessageMiddleware = pages_only(MessageMiddleware)
PagesOnlyXFrameOptionsMiddleware = pages_only(XFrameOptionsMiddleware)
PagesOnlyAxesMiddleware = pages_only(AxesMiddleware)
# django-csp's policy: JSON answers (served with nosniff) are no page a browser renders, and building the policy
# cost a sync about 0.15 ms.
PagesOnlyCSPMiddleware = pages_only(CSPMiddleware)
