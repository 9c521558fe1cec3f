from django.urls import path

from tickets import views

urlpatterns = [
    # Public: the signed token in the path is the permission (tickets.links).
    path("solved/<str:token>/", views.resolution_confirm, name="resolution-confirm"),
]
