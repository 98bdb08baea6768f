from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from memoryplatform import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # The ElevenLabs endpoints before the rest: Django tries patterns in order, and every include that does not
    # match records all of its patterns as tried (the operator API's router alone has dozens): about a tenth of
    # the memory tool's CPU when they came last.
    path("", include("calls.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    path("", include("core.urls")),
    path("", include("embeddings.urls")),
    path("", include("memories.urls")),
]

handler404 = "core.views.not_found"
