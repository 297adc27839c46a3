"""The portal account: from the variables the profile names, else from a Prefect Secret block; never printed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from learnhours.extractors.portal.errors import MissingCredentials
from learnhours.extractors.site_profile import SiteProfile


@dataclass(frozen=True)
class Credentials:
    user: str
    password: str

    def __repr__(self) -> str:  # neither the account (may be a national ID) nor the password
        return "Credentials(user=***, password=***)"


def resolve_credentials(profile: SiteProfile, env: Mapping[str, str]) -> Credentials:
    """Credentials from `env` (the variables the profile names, as the settings read them), else
    from the Prefect Secret block named in the profile."""
    spec = profile.credentials
    user, password = env.get(spec.user_env, ""), env.get(spec.password_env, "")
    if user and password:
        return Credentials(user, password)
    if spec.secret_block:
        return _credentials_from_block(profile, spec.secret_block)
    raise MissingCredentials(
        f"{profile.name}: no credentials: set the environment variables {spec.user_env} and "
        f"{spec.password_env} (names from credentials.user_env / credentials.password_env in "
        f"{profile.source or 'the profile'}), or name a Prefect Secret block in "
        "credentials.secret_block"
    )


def _credentials_from_block(profile: SiteProfile, block: str) -> Credentials:
    try:
        from prefect.blocks.system import Secret

        value: Any = Secret.load(block).get()  # type: ignore[union-attr]  # sync in a sync caller
    except Exception as exc:  # any failure to reach or read the block means: no credentials
        raise MissingCredentials(
            f"{profile.name}: cannot load the Prefect Secret block {block!r} named in "
            f"credentials.secret_block ({type(exc).__name__})"
        ) from None
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            value = None
    if not isinstance(value, dict) or not value.get("user") or not value.get("password"):
        raise MissingCredentials(
            f"{profile.name}: the Prefect Secret block {block!r} must hold a JSON object "
            'with "user" and "password"'
        )
    return Credentials(str(value["user"]), str(value["password"]))
