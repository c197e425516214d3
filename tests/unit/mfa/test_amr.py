"""amr/acr bookkeeping and the framework-free promise of the mfa package."""

from __future__ import annotations

import subprocess
import sys

from keyturn.mfa.amr import ACR_MFA, ACR_SINGLE, acr_for, combine


def test_password_and_a_possession_factor_is_mfa() -> None:
    """pwd + otp, pwd + hwk and pwd + swk are multi-factor sign-ins."""
    for second in ("otp", "hwk", "swk"):
        assert combine("pwd", second)[-1] == "mfa"


def test_a_passkey_is_mfa_only_with_user_verification() -> None:
    """A passkey alone is one factor; with user verification it is a complete MFA sign-in."""
    assert combine("hwk") == ("hwk",)
    assert combine("hwk", user_verified=True) == ("hwk", "mfa")


def test_one_factor_twice_is_not_mfa() -> None:
    """Two codes, or a password twice, are not two factors; mfa from an input is not trusted."""
    assert combine("otp", "otp") == ("otp",)
    assert combine("pwd", "mfa") == ("pwd",)


def test_acr_follows_amr() -> None:
    """acr says whether the sign-in was multi-factor."""
    assert acr_for(("pwd",)) == ACR_SINGLE
    assert acr_for(("pwd", "otp", "mfa")) == ACR_MFA


def test_the_mfa_package_imports_no_web_framework() -> None:
    """Importing every mfa module leaves starlette and fastapi unloaded."""
    modules = ["amr", "store", "memory", "totp", "recovery", "challenge", "relying_party"]
    modules += ["webauthn", "flow"]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module('keyturn.mfa.' + name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'fastapi')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
