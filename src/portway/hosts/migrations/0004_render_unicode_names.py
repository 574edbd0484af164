"""HostName.unicode_name: each server name in Unicode, for search in the user's script."""

from django.db import migrations, models


def fill_unicode_names(apps, schema_editor):
    from portway.core.fields import unicode_name

    HostName = apps.get_model("hosts", "HostName")
    for row in HostName.objects.filter(name__contains="xn--"):
        row.unicode_name = unicode_name(row.name)
        row.save(update_fields=["unicode_name"])
    HostName.objects.exclude(name__contains="xn--").update(unicode_name=models.F("name"))


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0003_nginx_serving_previous"),
    ]

    operations = [
        migrations.AddField(
            model_name="hostname",
            name="unicode_name",
            field=models.CharField(default="", max_length=253),
        ),
        migrations.RunPython(fill_unicode_names, migrations.RunPython.noop),
    ]
