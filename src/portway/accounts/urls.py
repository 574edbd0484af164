"""UI routes: /setup, /login, /logout."""

from django.urls import path

from portway.accounts import views

app_name = "accounts"

urlpatterns = [
    path("setup", views.setup, name="setup"),
    path("login", views.login_view, name="login"),
    path("logout", views.logout_view, name="logout"),
]
