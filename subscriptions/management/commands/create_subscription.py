import datetime as dt
import json

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from subscriptions.services import customer_get_or_create, subscription_create


def _add_on(value: str) -> tuple[str, int]:
    name, _, quantity = value.partition(":")
    try:
        return name.strip(), int(quantity)
    except ValueError:
        raise CommandError(f"--add-on {value!r}: expected NAME:QUANTITY, e.g. duo_pro:10") from None


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD)") from None


class Command(BaseCommand):
    help = "Create a subscription (and its customer, if new) with add-on purchases; prints its activation code."

    def add_arguments(self, parser):
        parser.add_argument("--customer", required=True, help="customer name (created if unknown)")
        parser.add_argument("--plan", required=True, help="license type: premium or ultimate")
        parser.add_argument("--seats", required=True, type=int)
        parser.add_argument("--add-on", action="append", default=[], dest="add_ons", help="NAME:QUANTITY")
        parser.add_argument("--trial", action="store_true")
        parser.add_argument("--starts", help="YYYY-MM-DD (default: today)")
        parser.add_argument("--expires", help="YYYY-MM-DD (default: one year after the start)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        starts = _date(options["starts"]) if options["starts"] else timezone.now().date()
        expires = _date(options["expires"]) if options["expires"] else None  # the service's default: a year
        add_ons = [_add_on(value) for value in options["add_ons"]]
        try:
            with transaction.atomic():
                customer = customer_get_or_create(name=options["customer"])
                subscription = subscription_create(
                    customer=customer,
                    license_type=options["plan"],
                    seats=options["seats"],
                    starts_on=starts,
                    expires_on=expires,
                    trial=options["trial"],
                    add_ons=add_ons,
                )
        except ValidationError as error:
            raise CommandError("; ".join(error.messages)) from None
        result = {
            "id": subscription.pk,
            "customer": customer.name,
            "plan": subscription.license_type,
            "seats": subscription.seats,
            "starts_on": subscription.starts_on.isoformat(),
            "expires_on": subscription.expires_on.isoformat(),
            "trial": subscription.trial,
            "add_ons": [
                {"add_on": p.add_on, "quantity": p.quantity, "purchase_id": p.purchase_id}
                for p in subscription.add_on_purchases.all()
            ],
            "activation_code": subscription.activation_code,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(f"Created subscription {subscription.pk} for {customer.name}.")
            self.stdout.write(f"Activation code: {subscription.activation_code}")
