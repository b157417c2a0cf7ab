"""A DAG as workers run it: its spec and plan, built once per version.

The version is a hash of the spec's canonical JSON (sources and line numbers left out),
so the same definition has the same version wherever it is loaded, and an edit that
changes what runs gives a new one. A run records the version it was submitted with;
workers plan from that stored version, so editing a file mid-run never changes the
graph of a running run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from orchestrator.model import plan as plan_
from orchestrator.model import spec as spec_

SHORT = 12
"""Characters of a version shown to people (the full hash is stored)."""


def canonical(spec: spec_.DagSpec) -> dict[str, Any]:
    """The spec as JSON-ready data, without where it came from."""
    return spec.model_dump(mode="json")


def version_of(data: dict[str, Any]) -> str:
    body = json.dumps(data, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(body.encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class CompiledDag:
    spec: spec_.DagSpec
    plan: plan_.Plan
    version: str
    data: dict[str, Any] = dataclasses.field(repr=False, compare=False)
    """The canonical JSON the version hashes: what the store keeps."""

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def short_version(self) -> str:
        return self.version[:SHORT]

    @classmethod
    def of(cls, spec: spec_.DagSpec) -> CompiledDag:
        data = canonical(spec)
        return cls(spec, plan_.build(spec), version_of(data), data)

    @classmethod
    def from_stored(cls, version: str, data: dict[str, Any],
                    source: str | None = None) -> CompiledDag:
        """Rebuild a stored version (already validated when it was submitted)."""
        spec = spec_.DagSpec.model_validate({**data, "source": source})
        return cls(spec, plan_.build(spec), version, data)
