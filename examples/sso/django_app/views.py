"""The protected page: a signed-out visitor is sent to keyturn first (LOGIN_URL)."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse(format_html("Signed in as {}", request.user.email))
