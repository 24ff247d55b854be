"""An endpoint of Sentry's API: its path template and the token scope it needs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["Route"]


@dataclass(frozen=True)
class Route:
    """``template`` is the path under ``/api/0/`` with ``{placeholders}``; ``scope`` the token
    scope Sentry requires for it (named in the message of a 403). The rate budget keeps one
    account per template, as Sentry limits each endpoint on its own."""

    template: str
    scope: str

    def path(self, params: Mapping[str, str] | None = None) -> str:
        """The template with its placeholders filled, each value percent-encoded whole (a
        release version may hold ``/``, ``+`` or spaces)."""
        if not params:
            return self.template
        return self.template.format(**{k: quote(str(v), safe="") for k, v in params.items()})
