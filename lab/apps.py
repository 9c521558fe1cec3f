from django.apps import AppConfig


class LabConfig(AppConfig):
    """Tools around the product, not the product: replays, offline evaluation, demo data.

    Lab imports the product apps; none of them imports lab.
    """

    name = "lab"
    verbose_name = "Lab"
