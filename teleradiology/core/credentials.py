"""The public example secrets of ``deploy/``: those of ``demo.env``, and those earlier
``.env.example`` and ``kubernetes/secret.example.yaml`` files printed (an operator's copy may
still hold them). A service outside the demo refuses to start while its environment holds
one of them."""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

#: Every secret value the deployment examples print or printed (``tests/unit/test_deploy.py``
#: checks that none of theirs is missing here).
EXAMPLE_SECRETS = frozenset(
    {
        # deploy/.env.example, until it carried no values
        "demo-postgres-password-change-me",
        "demo-minio-root-password-change-me",
        "iIMUMsq11ouPDlJy6NG//CevMg88tn+QH1YMRtV0/2k=",
        "demo-telemed-s3-secret-change-me",
        # deploy/demo.env
        "demo-postgres-password",
        "demo-replication-password",
        "demo-secret-key-not-secret",
        "de" * 32,  # TELEMED_NATIONAL_ID_KEY
        # deploy/kubernetes/secret.example.yaml, until it carried no values
        "REPLACE_ME",
        "REPLACE_SECRET_KEY",
    }
)


def example_secrets_in(env: Mapping[str, str]) -> list[str]:
    """The names (never the values) of the variables holding an example secret, as written
    or percent-encoded in a URL."""
    found = []
    for name, value in sorted(env.items()):
        seen = (value, unquote(value))
        if any(secret in text for secret in EXAMPLE_SECRETS for text in seen):
            found.append(name)
    return found
