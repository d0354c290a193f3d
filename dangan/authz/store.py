"""Which policy each tenant runs: its active version (table ``policy_version`` in the
tenant schema), or the shipped files in ``policies/`` when it has none.

Every request asks its tenant's transaction for the active version's id (one small
query, remembered for the rest of the transaction), so a version activated by any API
process applies to the next request everywhere — no restart, no broadcast. Engines are
built once per version and kept. Fail closed: a version that can't be loaded, or no
default policy, refuses the request rather than falling back to something more open.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import structlog

from dangan.authz.access import CustomerAccess
from dangan.authz.adapter import PolicyError
from dangan.authz.engine import PolicyEngine
from dangan.services.callers import Caller
from dangan.services.errors import DanganError
from dangan.settings import Settings
from dangan.tenants.scope import raw_connection

log = structlog.get_logger("dangan.authz")


class PolicyUnavailable(DanganError):
    """No valid policy is loaded: every request is refused rather than allowed."""

    code = "INTERNAL"


def read_policy_dir(directory: Path) -> dict[str, str]:
    """``*.polar`` files of a directory, and its ``tests/*.yaml`` as ``tests/<name>``."""
    files = {
        path.name: path.read_text(encoding="utf-8") for path in sorted(directory.glob("*.polar"))
    }
    if not files:
        raise FileNotFoundError(f"no .polar files in {directory}")
    for path in sorted((directory / "tests").glob("*.yaml")):
        files[f"tests/{path.name}"] = path.read_text(encoding="utf-8")
    return files


def polar_sources(files: dict[str, str]) -> dict[str, str]:
    return {name: text for name, text in files.items() if name.endswith(".polar")}


def test_sources(files: dict[str, str]) -> dict[str, str]:
    return {name: text for name, text in files.items() if name.startswith("tests/")}


class PolicyStore:
    def __init__(self) -> None:
        self.default: PolicyEngine | None = None
        self.default_files: dict[str, str] = {}
        self._versions: dict[tuple[int, int], PolicyEngine] = {}
        # Engines pinned to a tenant in this process, ahead of its stored versions (tests
        # that count Oso calls on a fresh engine use this).
        self._by_tenant: dict[int, PolicyEngine] = {}

    def activate(self, tenant_id: int, engine: PolicyEngine) -> None:
        """Pin ``engine`` for ``tenant_id`` in this process."""
        self._by_tenant[tenant_id] = engine

    def load_default(self, directory: Path) -> PolicyEngine:
        files = read_policy_dir(directory)
        self.default = PolicyEngine(polar_sources(files), version="default")
        self.default_files = files
        return self.default

    def version_engine(
        self, tenant_id: int, version_id: int, files: dict[str, str]
    ) -> PolicyEngine:
        key = (tenant_id, version_id)
        if key not in self._versions:
            self._versions[key] = PolicyEngine(polar_sources(files), version=str(version_id))
        return self._versions[key]

    async def engine_for(self, tenant_id: int) -> PolicyEngine:
        """The tenant's active engine (inside its tenant transaction)."""
        if tenant_id in self._by_tenant:
            return self._by_tenant[tenant_id]
        session = raw_connection()
        if "policy" in session.memo:
            cached: PolicyEngine = session.memo["policy"]
            return cached
        version_id = await session.fetchval("SELECT id FROM policy_version WHERE status = 'active'")
        if version_id is None:
            if self.default is None:
                raise PolicyUnavailable("access policies are not loaded; refusing the request")
            engine = self.default
        elif (tenant_id, version_id) in self._versions:
            engine = self._versions[tenant_id, version_id]
        else:
            raw: Any = await session.fetchval(
                "SELECT files FROM policy_version WHERE id = $1", version_id
            )
            try:
                engine = self.version_engine(tenant_id, version_id, orjson.loads(raw))
            except (PolicyError, ValueError) as exc:
                log.error("active policy version does not load", version=version_id, error=str(exc))
                raise PolicyUnavailable(
                    "the active access policy does not load; refusing the request"
                ) from exc
        session.memo["policy"] = engine
        return engine


POLICIES = PolicyStore()


def load_policies(settings: Settings) -> None:
    """Load the default policy at start-up. A broken policy is logged and leaves the
    store empty, so every customer request is refused (fail closed) until it's fixed."""
    try:
        POLICIES.load_default(settings.policy_dir)
    except (OSError, PolicyError) as exc:
        POLICIES.default = None
        log.error("access policies could not be loaded; refusing access", error=str(exc))


async def customer_access(caller: Caller) -> CustomerAccess:
    """The caller's access to customers under their tenant's active policy."""
    return CustomerAccess(await POLICIES.engine_for(caller.tenant_id), caller)
