"""UI routes: setup, sign-in (with its 2FA step), users, your account, 2FA, API tokens."""

from django.urls import path

from portway.accounts import gate_views, pages, views

app_name = "accounts"

urlpatterns = [
    path("setup", views.setup, name="setup"),
    # the login gate's pages (portway.accounts.gate_views): only via the gate socket
    path(".portway/login", gate_views.login, name="gate_login"),
    path(".portway/logout", gate_views.logout, name="gate_logout"),
    path(".portway/gate.css", gate_views.stylesheet, name="gate_css"),
    path("login", views.login_view, name="login"),
    path("login/2fa", views.login_2fa, name="login_2fa"),
    path("logout", views.logout_view, name="logout"),
    path("users", pages.user_list, name="user_list"),
    path("users/new", pages.user_create, name="user_create"),
    path("users/<int:user_id>", pages.user_edit, name="user_edit"),
    path("users/<int:user_id>/delete", pages.user_delete, name="user_delete"),
    path("users/<int:user_id>/enable", pages.user_enable, name="user_enable"),
    path("users/<int:user_id>/disable", pages.user_disable, name="user_disable"),
    path("users/<int:user_id>/reset-2fa", pages.user_reset_2fa, name="user_reset_2fa"),
    path("users/<int:user_id>/login-as", pages.user_login_as, name="user_login_as"),
    path("account", pages.account, name="account"),
    path("account/2fa", pages.two_factor, name="two_factor"),
    path("account/2fa/qr.png", pages.two_factor_qr, name="two_factor_qr"),
    path("account/tokens", pages.api_tokens, name="api_tokens"),
    path("account/tokens/<int:token_id>/revoke", pages.api_token_revoke, name="api_token_revoke"),
]
