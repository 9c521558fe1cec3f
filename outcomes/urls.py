from django.urls import path

from outcomes import views

urlpatterns = [
    # Public: the signed token in the path is the permission (outcomes.links).
    path("csat/<str:token>/", views.survey, name="csat-survey"),
]
