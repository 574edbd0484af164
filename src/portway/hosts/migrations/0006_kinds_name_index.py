"""HostName becomes the name index of every host kind: (kind, host_id) instead of a
foreign key to ProxyHost, and `claim` (the name while its host is enabled) under a
unique index, so the database decides which enabled host holds a name."""

from django.db import migrations, models


def rebuild_names(apps, schema_editor):
    from portway.core.fields import unicode_name

    ProxyHost = apps.get_model("hosts", "ProxyHost")
    HostName = apps.get_model("hosts", "HostName")
    HostName.objects.all().delete()
    claimed: set[str] = set()
    rows = []
    for host_id, names, enabled in ProxyHost.objects.order_by("id").values_list(
        "id", "domain_names", "enabled"
    ):
        for name in names:
            # a name two enabled hosts share (the old check raced) stays with the oldest
            claim = name if enabled and name not in claimed else None
            if claim:
                claimed.add(claim)
            rows.append(
                HostName(
                    kind="proxy",
                    host_id=host_id,
                    name=name,
                    unicode_name=unicode_name(name),
                    claim=claim,
                )
            )
    HostName.objects.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [
        ("hosts", "0005_access_cloudflare_only"),
    ]

    operations = [
        migrations.RemoveField(model_name="hostname", name="host"),
        migrations.AddField(
            model_name="hostname",
            name="kind",
            field=models.CharField(default="proxy", max_length=16),
        ),
        migrations.AddField(
            model_name="hostname",
            name="host_id",
            field=models.PositiveIntegerField(default=0),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="hostname",
            name="claim",
            field=models.CharField(blank=True, max_length=253, null=True, unique=True),
        ),
        migrations.AddIndex(
            model_name="hostname",
            index=models.Index(fields=["kind", "host_id"], name="hosts_hostname_kind_host"),
        ),
        migrations.RunPython(rebuild_names, migrations.RunPython.noop),
    ]
