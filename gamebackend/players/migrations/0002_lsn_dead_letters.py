from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("players", "0001_initial")]

    operations = [
        migrations.RenameField(model_name="player", old_name="rev", new_name="lsn"),
        migrations.CreateModel(
            name="FlushDeadLetter",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("batch_id", models.CharField(db_index=True, max_length=64)),
                ("entity_kind", models.CharField(default="player", max_length=16)),
                ("entities", models.PositiveIntegerField()),
                ("payload", models.JSONField()),
                ("error", models.TextField(blank=True)),
                ("attempts", models.PositiveIntegerField(default=0)),
                ("failed_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ("-failed_at",)},
        ),
    ]
