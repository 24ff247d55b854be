"""Bearer tokens with scopes, optional project restriction and team membership."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace

from .rand import hkey

__all__ = ["ALL_READ_SCOPES", "ORG_TOKEN_PREFIX", "SCOPE_RULES", "AuthError", "ScopeRule", "Token", "TokenStore"]

ALL_READ_SCOPES = ("org:read", "project:read", "team:read", "member:read", "event:read",
                   "project:releases", "alerts:read")
INVALID = "Invalid token"
EXPIRED = "Token expired"
FORBIDDEN = "You do not have permission to perform this action."
SCOPE_RULES = ("strict", "sentry")
# Sentry's prefix of organization auth tokens (AuthTokenType.ORG in src/sentry/types/token.py).
ORG_TOKEN_PREFIX = "sntrys_"


class ScopeRule(str):
    """The one scope an endpoint needs under "strict" rules (the str value itself), plus
    `any_of`: the scopes Sentry accepts for it (its OpenAPI `security`; any one is enough)."""

    any_of: frozenset[str]

    def __new__(cls, scope: str, any_of: tuple[str, ...] = ()) -> ScopeRule:
        rule = super().__new__(cls, scope)
        rule.any_of = frozenset(any_of or (scope,))
        return rule


class AuthError(Exception):
    """401 or 403 with Sentry's `detail` message."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


@dataclass(frozen=True)
class Token:
    value: str
    scopes: frozenset[str]
    projects: frozenset[str] | None  # project slugs or ids; None = every project
    revoked: bool = False
    # The slugs of the teams its user is a member of; None = a member of every project.
    teams: frozenset[str] | None = None

    def can_see(self, project_slug: str, project_id: str) -> bool:
        return self.projects is None or project_slug in self.projects or project_id in self.projects

    def is_member(self, project_team: str | None) -> bool:
        """Sentry's ``access.has_project_membership`` for a project of ``project_team``: what an
        organization endpoint reads when the request names no ``project``. An organization token
        (``sntrys_``) has no member behind it, so no team and no project (its access's
        ``project_ids_with_team_membership`` is empty, src/sentry/auth/access.py); a user token is
        a member of its teams' projects; ``teams=None`` is a member of every project, as Sentry's
        simulated membership of an internal integration (``OrganizationGlobalMembership``)."""
        if self.value.startswith(ORG_TOKEN_PREFIX):
            return False
        return self.teams is None or (project_team is not None and project_team in self.teams)


class TokenStore:
    def __init__(self, seed: int, rules: str = "sentry") -> None:
        if rules not in SCOPE_RULES:
            raise ValueError(f"scope_rules must be one of {SCOPE_RULES}, not {rules!r}")
        self._seed = seed
        self.rules = rules
        self._lock = threading.Lock()
        self._tokens: dict[str, Token] = {}
        self._n = 0

    def create(self, scopes: Iterable[str] = ALL_READ_SCOPES, projects: Iterable[str] | None = None,
               value: str | None = None, teams: Iterable[str] | None = None) -> str:
        with self._lock:
            self._n += 1
            # Personal user tokens look like `sntryu_` + 64 hex chars.
            value = value or "sntryu_" + "".join(f"{hkey(self._seed, 'token', self._n, j):016x}" for j in range(4))
            self._tokens[value] = Token(value, frozenset(scopes), None if projects is None else frozenset(projects),
                                        teams=None if teams is None else frozenset(teams))
            return value

    def revoke(self, value: str) -> None:
        with self._lock:
            self._tokens[value] = replace(self._tokens[value], revoked=True)

    def rename_project(self, old_slug: str, new_slug: str) -> None:
        """Tokens restricted to a project by its old slug keep it under the new one."""
        with self._lock:
            for value, token in list(self._tokens.items()):
                if token.projects is not None and old_slug in token.projects:
                    self._tokens[value] = replace(token, projects=(token.projects - {old_slug}) | {new_slug})

    def lookup(self, authorization: str | None) -> Token | None:
        """The token named by an `Authorization: Bearer ...` header, valid or not."""
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        return self._tokens.get(value.strip())

    def authenticate(self, authorization: str | None, scope: str | None) -> Token:
        """The valid token with `scope`, or AuthError(401 missing/unknown/revoked, 403 scope)."""
        token = self.lookup(authorization)
        if token is None:
            raise AuthError(401, INVALID)
        if token.revoked:
            raise AuthError(401, EXPIRED)
        if scope is not None:
            accepted = getattr(scope, "any_of", None) if self.rules == "sentry" else None
            if not (accepted & token.scopes if accepted else scope in token.scopes):
                raise AuthError(403, FORBIDDEN)
        return token
