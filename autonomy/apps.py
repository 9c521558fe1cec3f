from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "autonomy"
    verbose_name = "Autonomy"

    def ready(self) -> None:
        from autonomy import receivers  # noqa: F401 - listens for agent decisions
