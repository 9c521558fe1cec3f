from django.core.management.base import BaseCommand, CommandError

from agents import decision_types, services
from agents.models import HumanLabel, ModelVersion


class Command(BaseCommand):
    help = "Train the local model on human-confirmed labels and make the new version active."

    def add_arguments(self, parser):
        parser.add_argument(
            "--decision-type",
            choices=decision_types.names(),
            action="append",
            help="Train only this decision type (repeatable; default: every type with labels).",
        )
        parser.add_argument("--if-missing", action="store_true", help="Skip types that already have a model.")

    def handle(self, *args, decision_type, if_missing, **options):
        types = decision_type or list(
            HumanLabel.objects.order_by().values_list("decision_type", flat=True).distinct()
        )
        if not types:
            raise CommandError("No human-confirmed labels yet: import history with import_tickets first.")
        for name in types:
            if if_missing and ModelVersion.objects.filter(decision_type=name, is_active=True).exists():
                self.stdout.write(f"{name}: a model is active; skipped.")
                continue
            self.stdout.write(f"{name}: training…")
            version = services.model_train(decision_type=name)
            if version is None:
                self.stdout.write(f"{name}: too few labels or classes; no model trained.")
                continue
            held_out = ", ".join(f"{k} {v:.3f}" for k, v in version.metrics.items() if isinstance(v, float))
            self.stdout.write(
                f"{name}: version {version.version} active, {version.training_size} examples, "
                f"{len(version.labels)} labels; held out: {held_out or 'n/a'}"
            )
