"""The project's URLs: mozilla-django-oidc's sign-in views and one protected page."""

from django.urls import include, path

from examples.sso.django_app import views

urlpatterns = [
    path("oidc/", include("mozilla_django_oidc.urls")),  # authenticate/, callback/, logout/
    path("", views.home),
]
