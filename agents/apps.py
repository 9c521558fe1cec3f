from django.apps import AppConfig


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from agents import receivers, roles  # noqa: F401 - receivers connect the pipeline to triage

        post_migrate.connect(roles.ensure_roles, sender=self)
