"""UI routes: the dashboard."""

from django.urls import path

from portway.web import views

app_name = "web"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
