from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "autonomy"
    verbose_name = "Autonomy"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from autonomy import appliers, receivers, roles  # noqa: F401 - receivers listen for agent decisions

        appliers.register()
        post_migrate.connect(roles.ensure_roles, sender=self)
