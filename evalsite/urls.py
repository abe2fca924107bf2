from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from evalsite import staff

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="raters:home", permanent=False)),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("rate/", include("raters.urls")),
    path("api/", include("raters.api_urls")),
    path("staff/", staff.home, name="staff-home"),
    path("staff/generation/", include("generation.urls")),
    path("staff/studies/", include("raters.staff_urls")),
    path("staff/analysis/", include("analysis.urls")),
]
if settings.DEBUG:
    # Staff pages show posters from MEDIA_URL; raters only ever get files through raters:clip.
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
