from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0012_seat_report_received_index")]

    operations = [
        migrations.AddField(
            model_name="addonpurchase",
            name="suspended",
            field=models.BooleanField(default=False, db_default=False, editable=False),
        ),
    ]
