from django.urls import path

from core import views

urlpatterns = [
    path("metrics", views.prometheus_metrics, name="metrics"),
]
