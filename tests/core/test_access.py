"""core.access: the one secret policy of the call endpoints and the metrics token."""

import json

import pytest
from django.contrib.auth.models import User
from django.http import HttpResponse
from django.test import RequestFactory

from core.access import METRICS, SecretPolicy, bearer_token, require_secret
from tests.factories import make_staff

POLICY = SecretPolicy(secrets_setting="TEST_SECRETS", header_setting="TEST_HEADER", not_configured="Not set up.")


@require_secret(POLICY)
def guarded(request):
    return HttpResponse("ok")


@pytest.fixture(autouse=True)
def secrets(settings):
    settings.TEST_SECRETS = ["old-secret", "new-secret"]
    settings.TEST_HEADER = "X-Test-Secret"


def call(**headers):
    return guarded(RequestFactory().post("/", headers=headers))


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Test-Secret": "old-secret"},
        {"X-Test-Secret": " new-secret "},
        {"Authorization": "Bearer new-secret"},
        {"Authorization": "bearer old-secret"},
    ],
)
def test_every_accepted_secret_in_the_header_or_as_bearer_opens(headers):
    assert call(**headers).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Test-Secret": "wrong"},
        {"X-Test-Secret": "old-secret-and-more"},
        {"X-Test-Secret": "ölder-secret"},  # not ASCII: wrong, never a TypeError
        {"Authorization": "Bearer ¹²³"},
        {"Authorization": "Basic old-secret"},
        {"Authorization": "Bearer"},
        {"X-Other": "old-secret"},
    ],
)
def test_anything_else_is_a_short_401(headers):
    response = call(**headers)
    assert response.status_code == 401
    assert response.content == b'{"error": "Missing or wrong secret."}'


def test_no_secret_configured_closes_the_endpoint_with_503(settings):
    settings.TEST_SECRETS = []
    response = call(**{"X-Test-Secret": ""})
    assert response.status_code == 503 and json.loads(response.content) == {"error": "Not set up."}


def test_bearer_token_is_ascii_bytes_or_nothing():
    factory = RequestFactory()
    assert bearer_token(factory.get("/", headers={"Authorization": "Bearer abc "})) == b"abc"
    assert bearer_token(factory.get("/", headers={"Authorization": "Bearer é"})) is None
    assert bearer_token(factory.get("/")) is None


@pytest.mark.django_db
def test_metrics_policy_lets_staff_in_and_otherwise_needs_the_token(settings):
    settings.METRICS_TOKENS = []
    request = RequestFactory().get("/metrics")
    request.user = make_staff("ops")
    assert METRICS.check(request) is None
    request.user = User.objects.create_user("someone")
    assert METRICS.check(request).status_code == 401, "no token configured: staff only"
    settings.METRICS_TOKENS = ["scrape"]
    request = RequestFactory().get("/metrics", headers={"Authorization": "Bearer scrape"})
    request.user = User.objects.create_user("prometheus")
    assert METRICS.check(request) is None
