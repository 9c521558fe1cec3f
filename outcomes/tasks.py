"""Periodic outcomes work (schedules in settings.CELERY_BEAT_SCHEDULE). Running a task twice,
or late, is harmless."""

from celery import shared_task

from outcomes import day_figures


@shared_task(acks_late=True)
def day_figures_refresh() -> str:
    """Compute again the stored days of the dashboard's outcomes whose inputs changed."""
    return day_figures.day_figures_refresh()
