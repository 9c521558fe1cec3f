from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "review"
    verbose_name = "Review console"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from review import roles

        post_migrate.connect(roles.ensure_roles, sender=self)
