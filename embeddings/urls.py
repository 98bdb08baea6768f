from django.urls import path

from embeddings import views

urlpatterns = [
    path("metrics/embedding-cache", views.embedding_cache_statistics, name="embedding-cache-statistics"),
]
