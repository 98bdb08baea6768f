from django.urls import path

from embeddings import views

urlpatterns = [
    path("metrics", views.prometheus_metrics, name="metrics"),
    path("metrics/embedding-cache", views.embedding_cache_statistics, name="embedding-cache-statistics"),
]
