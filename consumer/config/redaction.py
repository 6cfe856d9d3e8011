"""Secrets in client properties and URLs, replaced by *** wherever settings or configs are printed.

Its own module so that Settings (its repr and `config` output) and the client-config check's error
messages share one rule for what is a secret, without either importing the other for it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Substrings of librdkafka/registry property names whose values are never printed or logged.
#: Covers librdkafka's _RK_SENSITIVE properties except three that hold no secret (sasl.username,
#: an identity; ssl.key.location, a path; ssl.ca.pem, public certificates), the Schema Registry
#: client's credentials, and Java's sasl.jaas.config. Over-matching a harmless key
#: (bearer.auth.credentials.source) is the safe side of the trade.
_SECRET_MARKERS = (
    "password",
    "secret",
    "passphrase",
    "token",
    "key.pem",
    "private.key",
    "ssl_key",
    "jaas",
    "user.info",
    "credentials",
    "oauthbearer.config",
    "provider.config",
)
#: Keys ending so hold an endpoint (sasl.oauthbearer.token.endpoint.url): only userinfo is hidden.
_URL_SUFFIX = ".url"
#: scheme://userinfo@ in any value; userinfo runs to the last @ before the path (or a space).
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/?#\s]*@")
REDACTED = "***"


def is_secret(key: str) -> bool:
    """Whether a client property's value is a credential (see _SECRET_MARKERS)."""
    lowered = key.lower()
    if lowered.endswith(_URL_SUFFIX):
        return False
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact(key: str, value: Any) -> Any:
    """`value` fit to print: *** for a secret property, else with any URL userinfo as ***."""
    if is_secret(key):
        return REDACTED
    if isinstance(value, str):
        return _USERINFO.sub(rf"\g<scheme>{REDACTED}@", value)
    return value


def redact_conf(conf: Mapping[str, Any]) -> dict[str, Any]:
    """A client config (or settings map) fit to print or log, keys sorted; the one redactor."""
    return {key: redact(key, value) for key, value in sorted(conf.items())}
