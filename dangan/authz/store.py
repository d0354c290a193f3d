"""Which policy each tenant runs: the default files in ``policies/`` until a tenant
activates a version of its own. Fail closed: with no policy loaded, nothing is allowed.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from dangan.authz.access import CustomerAccess
from dangan.authz.adapter import PolicyError
from dangan.authz.engine import PolicyEngine
from dangan.services.callers import Caller
from dangan.services.errors import DanganError
from dangan.settings import Settings

log = structlog.get_logger("dangan.authz")


class PolicyUnavailable(DanganError):
    """No valid policy is loaded: every request is refused rather than allowed."""

    code = "INTERNAL"


def read_policy_dir(directory: Path) -> dict[str, str]:
    files = sorted(directory.glob("*.polar"))
    if not files:
        raise FileNotFoundError(f"no .polar files in {directory}")
    return {path.name: path.read_text(encoding="utf-8") for path in files}


class PolicyStore:
    def __init__(self) -> None:
        self.default: PolicyEngine | None = None
        self._by_tenant: dict[int, PolicyEngine] = {}

    def load_default(self, directory: Path) -> PolicyEngine:
        self.default = PolicyEngine(read_policy_dir(directory), version="default")
        return self.default

    def engine(self, tenant_id: int) -> PolicyEngine:
        engine = self._by_tenant.get(tenant_id, self.default)
        if engine is None:
            raise PolicyUnavailable("access policies are not loaded; refusing the request")
        return engine

    def activate(self, tenant_id: int, engine: PolicyEngine) -> None:
        self._by_tenant[tenant_id] = engine


POLICIES = PolicyStore()


def load_policies(settings: Settings) -> None:
    """Load the default policy at start-up. A broken policy is logged and leaves the
    store empty, so every customer request is refused (fail closed) until it's fixed."""
    try:
        POLICIES.load_default(settings.policy_dir)
    except (OSError, PolicyError) as exc:
        POLICIES.default = None
        log.error("access policies could not be loaded; refusing access", error=str(exc))


def customer_access(caller: Caller) -> CustomerAccess:
    """The caller's access to customers under their tenant's active policy."""
    return CustomerAccess(POLICIES.engine(caller.tenant_id), caller)
