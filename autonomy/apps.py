from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "autonomy"
    verbose_name = "Autonomy"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from autonomy import receivers, roles  # noqa: F401 - receivers listen for agent decisions

        post_migrate.connect(roles.ensure_roles, sender=self)
