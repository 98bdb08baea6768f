from django.urls import include, path
from rest_framework.routers import DefaultRouter

from memories import api

router = DefaultRouter(trailing_slash=False)
router.register("memories", api.MemoryViewSet, basename="memory")

urlpatterns = [
    path("api/users/<str:user_id>/memories", api.UserMemoriesView.as_view(), name="user-memories"),
    path("api/users/<str:user_id>/export", api.UserExportView.as_view(), name="user-export"),
    path("api/", include(router.urls)),
]
