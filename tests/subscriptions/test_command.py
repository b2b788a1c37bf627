import datetime as dt
import io
import json

import pytest
from django.core.management import CommandError, call_command

from subscriptions.models import Customer, Subscription

pytestmark = pytest.mark.django_db


def run(*args):
    out = io.StringIO()
    call_command("create_subscription", *args, stdout=out)
    return out.getvalue()


def test_json_output_has_the_activation_code():
    out = run(
        "--customer",
        "ACME",
        "--plan",
        "ultimate",
        "--seats",
        "100",
        "--add-on",
        "duo_enterprise:50",
        "--add-on",
        "duo_pro:5",
        "--starts",
        "2026-01-01",
        "--expires",
        "2027-01-01",
        "--json",
    )
    result = json.loads(out.strip().splitlines()[-1])
    subscription = Subscription.objects.get()
    assert result["activation_code"] == subscription.activation_code
    assert result["plan"] == "ultimate" and result["seats"] == 100
    assert [(a["add_on"], a["quantity"]) for a in result["add_ons"]] == [("duo_enterprise", 50), ("duo_pro", 5)]
    assert subscription.expires_on == dt.date(2027, 1, 1)


def test_existing_customer_is_reused():
    run("--customer", "ACME", "--plan", "premium", "--seats", "1", "--json")
    run("--customer", "ACME", "--plan", "premium", "--seats", "2", "--trial", "--json")
    assert Customer.objects.count() == 1 and Subscription.objects.count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--plan", "gold"], "Unknown license type 'gold'"),
        (["--plan", "premium", "--add-on", "duo_gold:3"], "Unknown add-on 'duo_gold'"),
        (["--plan", "premium", "--add-on", "duo_pro"], "expected NAME:QUANTITY"),
        (["--plan", "premium", "--starts", "2026-05-01", "--expires", "2026-04-01"], "must start before it expires"),
        (["--plan", "premium", "--starts", "01/05/2026"], "is not a date"),
    ],
)
def test_bad_input_is_a_clear_error_and_writes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run("--customer", "Nobody", "--seats", "3", *args, "--json")
    assert Customer.objects.count() == 0 and Subscription.objects.count() == 0
