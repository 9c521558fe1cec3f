from django.apps import AppConfig


class AutonomyConfig(AppConfig):
    name = "autonomy"
