"""`{% subscription_credits subscription %}`: the month's credits statement on the subscription page, for roles that
may read the ledger. A template tag, so that the subscription admin (below this app) needs no import of it."""

from django import template
from django.utils import timezone

from credits.selectors import (
    burn_down,
    credits_text,
    month_of,
    month_statement,
    usage_events_latest,
    usage_top,
)

register = template.Library()
register.filter("credits", credits_text)


@register.inclusion_tag("admin/credits/_subscription_credits.html", takes_context=True)
def subscription_credits(context, subscription):
    user = context["request"].user
    if not user.has_perm("credits.view_usageevent"):
        return {"shown": False}
    statement = month_statement(subscription, month_of(timezone.now()))
    return {
        "shown": True,
        "subscription": subscription,
        "statement": statement,
        "burn_down": _burn_down_picture(statement),
        "top_users": usage_top(subscription, statement.month, "user_key"),
        "top_features": usage_top(subscription, statement.month, "feature"),
        "latest": usage_events_latest(subscription, 10),
        "can_grant": user.has_perm("credits.add_creditgrant"),
        "can_set_overage": user.has_perm("credits.change_creditaccount"),
    }


@register.inclusion_tag("admin/credits/_customer_credits.html", takes_context=True)
def customer_credits(context, subscriptions):
    """The month's credit use of each subscription the customer's page shows (one line each; the subscription's
    page has the whole statement)."""
    if not context["request"].user.has_perm("credits.view_usageevent"):
        return {"shown": False}
    month = month_of(timezone.now())
    return {
        "shown": True,
        "month": month,
        "lines": [(subscription, month_statement(subscription, month)) for subscription in subscriptions],
    }


WIDTH, HEIGHT, PAD = 600, 160, 28


def _burn_down_picture(statement) -> dict:
    """Coordinates of the month's burn-down (credits left at each day's end) for a server-drawn SVG: no script, no
    inline style, so the page's CSP holds; the daily usage table beside it says the same in text."""
    points = burn_down(statement)
    top = max([statement.granted, *(left for _, left in points)], default=0) or 1
    bottom = min([0, *(left for _, left in points)])
    span = (top - bottom) or 1

    def x(day):
        return PAD + (WIDTH - 2 * PAD) * (day - 1) / 30

    def y(value):
        return PAD + (HEIGHT - 2 * PAD) * float((top - value) / span)

    return {
        "width": WIDTH,
        "height": HEIGHT,
        "line": " ".join(f"{x(day):.1f},{y(left):.1f}" for day, left in points),
        "zero_y": f"{y(0):.1f}",
        "top_y": f"{y(top) + 4:.1f}",
        "top_label": credits_text(top),
        "left": PAD,
        "right": WIDTH - PAD,
        "label": f"{credits_text(points[-1][1]) if points else credits_text(statement.granted)} credits left",
    }
