"""Who may call the server and the demo: an optional shared secret, compared in constant time.

`lcrec serve` takes it as a bearer token (`Authorization: Bearer KEY`); `lcrec demo` as the password of Gradio's
login page. The key comes from `--api-key` or the `LCREC_API_KEY` environment variable (which, unlike a command-line
argument, does not show in `ps`).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
from collections.abc import Callable

logger = logging.getLogger(__name__)

API_KEY_ENV = "LCREC_API_KEY"
DEMO_AUTH_ENV = "LCREC_DEMO_AUTH"
SHORT_KEY = 16  # below this many characters a key is guessable enough to warn about
LOOPBACK_NAMES = ("localhost",)


def resolve_api_key(value: str | None) -> str | None:
    """The API key from `--api-key` (when given) or `$LCREC_API_KEY`; None when neither is set.

    A key must be visible ASCII without spaces (what an `Authorization: Bearer` header can carry); an empty one is
    refused rather than read as "no key", so a blank variable never silently opens the server.
    """
    source = "--api-key"
    if value is None:
        value, source = os.environ.get(API_KEY_ENV), f"${API_KEY_ENV}"
    if value is None:
        return None
    if not value:
        raise ValueError(
            f"{source} is empty: give a key (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))') "
            "or unset it"
        )
    if not all("!" <= char <= "~" for char in value):
        raise ValueError(f"{source}: an API key must be visible ASCII characters without spaces")
    if len(value) < SHORT_KEY:
        logger.warning(
            "%s is only %d characters long: use a random key of %d or more", source, len(value), SHORT_KEY * 2
        )
    return value


def resolve_demo_login(value: str | None) -> tuple[str, str] | None:
    """`USER:PASSWORD` from `--auth` (when given) or `$LCREC_DEMO_AUTH`, split at the first colon; None when unset."""
    source = "--auth"
    if value is None:
        value, source = os.environ.get(DEMO_AUTH_ENV), f"${DEMO_AUTH_ENV}"
    if value is None:
        return None
    user, colon, password = value.partition(":")
    if not colon or not user.strip() or not password:
        raise ValueError(f"{source} must be USER:PASSWORD with a non-empty user name and password")
    return user.strip(), password


def secrets_match(given: str, expected: str) -> bool:
    """Constant-time comparison (hmac.compare_digest on UTF-8 bytes, so any text is compared, never raised on)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def gradio_login(api_key: str | None, login: tuple[str, str] | None) -> Callable[[str, str], bool] | None:
    """Gradio's `auth=` callable: the key as password (any user name), or the exact user and password; None: open.

    Both parts are always compared, so the time taken does not tell which one was wrong.
    """
    if api_key is not None and login is not None:
        raise ValueError("give either an API key (--api-key / $LCREC_API_KEY) or --auth USER:PASSWORD, not both")
    if api_key is not None:
        return lambda user, password: secrets_match(password, api_key)
    if login is not None:
        expected_user, expected_password = login
        return lambda user, password: (
            secrets_match(user.strip(), expected_user) & secrets_match(password, expected_password)
        )
    return None


def is_loopback(host: str) -> bool:
    """True when `host` only accepts connections from this machine (127.0.0.0/8, ::1, localhost)."""
    if host.casefold() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost may resolve to any interface
        return False


def warn_if_open(host: str, protected: bool, what: str, remedy: str) -> bool:
    """Log a warning when `what` binds beyond loopback without authentication; returns whether it warned."""
    if protected or is_loopback(host):
        return False
    logger.warning(
        "%s listens on %s without authentication: anyone who can reach the port can use it (%s)", what, host, remedy
    )
    return True
