"""URL map: the API under /api, each app's UI pages at the root."""

from django.urls import include, path

from portway.access.api import router as access_router
from portway.accounts.api import router as accounts_router
from portway.certificates.api import portway_router as certificates_portway_router
from portway.certificates.api import router as certificates_router
from portway.core.api import api
from portway.hosts.api import (
    dead_router,
    portway_logs_router,
    redirection_router,
    stream_router,
)
from portway.hosts.api import portway_router as hosts_portway_router
from portway.hosts.api import router as hosts_router
from portway.nginx.api import (
    audit_router,
    portway_audit_router,
    reports_router,
    settings_router,
    status_router,
)
from portway.tunnels.api import router as tunnels_router

api.add_router("/nginx/proxy-hosts", hosts_router)
api.add_router("/nginx/redirection-hosts", redirection_router)
api.add_router("/nginx/dead-hosts", dead_router)
api.add_router("/nginx/streams", stream_router)
api.add_router("/nginx/certificates", certificates_router)
api.add_router("/nginx/access-lists", access_router)
api.add_router("/nginx", status_router)
api.add_router("/settings", settings_router)
api.add_router("/audit-log", audit_router)
api.add_router("/reports", reports_router)
api.add_router("/portway", certificates_portway_router)
api.add_router("/portway", portway_audit_router)
api.add_router("/portway", hosts_portway_router)
api.add_router("/portway", tunnels_router)
api.add_router("/portway", portway_logs_router)
api.add_router("/", accounts_router)

urlpatterns = [
    path("api/", api.urls),
    path("", include("portway.accounts.urls")),
    path("", include("portway.hosts.urls")),
    path("", include("portway.access.urls")),
    path("", include("portway.certificates.urls")),
    path("", include("portway.nginx.urls")),
    path("", include("portway.npmimport.urls")),
    path("", include("portway.tunnels.urls")),
    path("", include("portway.backups.urls")),
    path("", include("portway.web.urls")),
]

handler400 = "portway.web.errors.bad_request"
handler403 = "portway.web.errors.permission_denied"
handler404 = "portway.web.errors.page_not_found"
handler500 = "portway.web.errors.server_error"
