"""`{% subscription_credits subscription %}`: the month's credits statement on the subscription page, for roles that
may read the ledger. A template tag, so that the subscription admin (below this app) needs no import of it."""

from django import template
from django.utils import timezone

from credits.selectors import credits_text, month_of, month_statement, usage_events_latest

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
        "latest": usage_events_latest(subscription, 10),
        "can_grant": user.has_perm("credits.add_creditgrant"),
        "can_set_overage": user.has_perm("credits.change_creditaccount"),
    }
