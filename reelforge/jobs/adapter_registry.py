"""The MLflow model registry as the adapter registry: one registered model per tenant adapter.

Naming: the registered model of tenant `acme`'s adapter `brand` on `reelforge-tiny` is
`acme.brand.reelforge-tiny` (MLflow names may not hold `:` or `/`), and its API id is
`ft:reelforge-tiny:acme:brand`. Each finished fine-tune adds a version and moves alias
`candidate` to it; `promote` moves `production` (what serving resolves) and remembers the previous
production version so `rollback` can move it back.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from reelforge.errors import UserInputError
from reelforge.jobs.run_tracking import TAG_PREFIX, tracking_client
from reelforge.settings import Settings

CANDIDATE = "candidate"
PRODUCTION = "production"
HISTORY_TAG = f"{TAG_PREFIX}production_history"
SUFFIX_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,39}$")


class AdapterNotFoundError(UserInputError):
    """No registered adapter (or version) of that name for this tenant."""

    http_status = 404
    code = "adapter_not_found"


# Everything pasted into an MLflow filter string: names are built from tenant, suffix and base
# model, none of which may hold a quote, so a filter can never be escaped from.
FILTER_LITERAL = re.compile(r"[A-Za-z0-9._-]{1,300}")


def filter_literal(text: str) -> str:
    """`text` as it may stand between quotes in an MLflow filter string, or an AdapterNotFoundError."""
    if not FILTER_LITERAL.fullmatch(text):
        raise AdapterNotFoundError(f"no registered adapter is named {text[:100]!r}")
    return text


def registered_model_name(tenant: str, suffix: str, base_model: str) -> str:
    """`acme`, `brand`, `reelforge-tiny` -> `acme.brand.reelforge-tiny`."""
    return f"{tenant}.{suffix}.{Path(base_model).name}"


def adapter_sha256(directory: Path) -> str:
    """Content hash of an adapter directory's files (names and bytes), for audit and tags."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        digest.update(path.relative_to(directory).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class AdapterVersion:
    """One registered version as the CLI and the server see it."""

    name: str
    version: int
    aliases: tuple[str, ...]
    run_id: str | None
    source: str
    tags: dict[str, str]
    created_ms: int

    @property
    def fine_tuned_model(self) -> str:
        """The `ft:` id this version answers to."""
        return self.tags.get(f"{TAG_PREFIX}fine_tuned_model", "")


def register_adapter(
    settings: Settings,
    name: str,
    source: str,
    run_id: str,
    tags: dict[str, str],
    description: str,
    sha256: str,
    base_fingerprint: str | None = None,
) -> AdapterVersion:
    """Add a version for the adapter at `source` (an artifact URI of `run_id`) and point `candidate` at it.

    `sha256` (the adapter's `adapter_sha256`) is recorded in the platform database, which serving
    checks; the registry's tag of it is for people to read, and no check trusts it. So is
    `base_fingerprint` (its card's), which the API checks against the served base.
    """
    from mlflow.exceptions import MlflowException

    from reelforge.platform.stores.adapter_digests import AdapterDigestStore

    client = tracking_client(settings)

    try:
        client.get_registered_model(name)
    except MlflowException:
        model_tags = {
            k: v
            for k, v in tags.items()
            if k in (f"{TAG_PREFIX}tenant", f"{TAG_PREFIX}base_model", f"{TAG_PREFIX}fine_tuned_model")
        }
        client.create_registered_model(
            name, tags=model_tags, description=f"LoRA adapter {tags.get(f'{TAG_PREFIX}fine_tuned_model', name)}"
        )
    tags = {**tags, f"{TAG_PREFIX}adapter_sha256": sha256}
    version = client.create_model_version(name, source=source, run_id=run_id, tags=tags, description=description)
    # Recorded before the alias points at it: no version is ever servable without its digest.
    tenant = tags.get(f"{TAG_PREFIX}tenant", "")
    AdapterDigestStore(settings.resolved_database_url).record(
        name, int(version.version), sha256, tenant, source, base_fingerprint
    )
    client.set_registered_model_alias(name, CANDIDATE, version.version)
    return _version(client, name, int(version.version))


def _version(client, name: str, version: int) -> AdapterVersion:
    mv = client.get_model_version(name, str(version))
    return AdapterVersion(
        name=name,
        version=int(mv.version),
        aliases=tuple(sorted(mv.aliases or [])),
        run_id=mv.run_id,
        source=mv.source,
        tags=dict(mv.tags or {}),
        created_ms=int(mv.creation_timestamp or 0),
    )


def tenant_adapter_names(settings: Settings, tenant: str) -> list[str]:
    """Registered adapter names of `tenant` (only that tenant's: names start with `<tenant>.`)."""
    client = tracking_client(settings)
    names = []
    token = None
    while True:
        page = client.search_registered_models(
            filter_string=f"name LIKE '{filter_literal(tenant)}.%'", max_results=100, page_token=token
        )
        names.extend(m.name for m in page if (m.tags or {}).get(f"{TAG_PREFIX}tenant") == tenant)
        token = page.token
        if not token:
            return sorted(names)


def resolve_adapter_name(settings: Settings, tenant: str, suffix: str | None = None) -> str:
    """The tenant's one adapter, or the one whose suffix is `suffix`; errors name what exists."""
    names = tenant_adapter_names(settings, tenant)
    if suffix is not None:
        matching = [n for n in names if n.split(".")[1] == suffix]
        if len(matching) == 1:
            return matching[0]
        raise AdapterNotFoundError(
            f"tenant {tenant!r} has no adapter {suffix!r}"
            + (f"; it has {', '.join(names)}" if names else "; it has none yet")
        )
    if not names:
        raise AdapterNotFoundError(
            f"tenant {tenant!r} has no registered adapters yet; run `reelforge finetune --tenant {tenant}` first"
        )
    if len(names) > 1:
        raise UserInputError(
            f"tenant {tenant!r} has several adapters ({', '.join(names)}); choose one with --adapter SUFFIX"
        )
    return names[0]


def list_versions(settings: Settings, name: str) -> list[AdapterVersion]:
    """Every version of a registered adapter, newest first."""
    client = tracking_client(settings)
    versions = client.search_model_versions(filter_string=f"name = '{filter_literal(name)}'")
    return sorted((_version(client, name, int(v.version)) for v in versions), key=lambda v: -v.version)


def _history(client, name: str) -> list[int]:
    tags = client.get_registered_model(name).tags or {}
    return json.loads(tags.get(HISTORY_TAG, "[]"))


def alias_version(settings: Settings, name: str, alias: str) -> AdapterVersion | None:
    """The version `alias` points at, or None."""
    from mlflow.exceptions import MlflowException

    client = tracking_client(settings)
    try:
        mv = client.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None
    return _version(client, name, int(mv.version))


def promote(settings: Settings, name: str, version: int | None = None) -> AdapterVersion:
    """Point `production` at `version` (default: the `candidate`), remembering the one it replaces."""
    client = tracking_client(settings)
    if version is None:
        candidate = alias_version(settings, name, CANDIDATE)
        if candidate is None:
            raise AdapterNotFoundError(f"{name} has no {CANDIDATE!r} version to promote; give --version")
        version = candidate.version
    known = {v.version for v in list_versions(settings, name)}
    if version not in known:
        raise AdapterNotFoundError(f"{name} has no version {version}; versions: {sorted(known)}")
    current = alias_version(settings, name, PRODUCTION)
    if current is not None and current.version == version:
        return current
    history = _history(client, name)
    if current is not None:
        history.append(current.version)
    client.set_registered_model_alias(name, PRODUCTION, str(version))
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history[-50:]))
    return _version(client, name, version)


def rollback(settings: Settings, name: str) -> AdapterVersion:
    """Move `production` back to the version it pointed at before the last promotion."""
    client = tracking_client(settings)
    history = _history(client, name)
    if not history:
        raise UserInputError(f"{name} has no earlier production version to roll back to")
    previous = history.pop()
    client.set_registered_model_alias(name, PRODUCTION, str(previous))
    client.set_registered_model_tag(name, HISTORY_TAG, json.dumps(history))
    return _version(client, name, previous)


def import_adapter(settings: Settings, tenant: str, suffix: str, base_model: str, directory: Path) -> AdapterVersion:
    """Register a diffusers-format LoRA trained elsewhere as a new version of `tenant`'s `suffix` adapter.

    The files are logged as an MLflow run in the tenant's experiment (so the version has lineage like
    a fine-tune's) and the version becomes `candidate`; promote it to serve it.
    """
    from reelforge.jobs.ingest import TENANT_PATTERN
    from reelforge.jobs.run_tracking import tenant_experiment_id
    from reelforge.models.lora import LORA_WEIGHTS_FILE, read_adapter_card

    if not TENANT_PATTERN.match(tenant):
        raise UserInputError(f"tenant {tenant!r} is not a valid tenant name")
    if not SUFFIX_PATTERN.match(suffix):
        raise UserInputError(f"adapter suffix {suffix!r} must be 1-40 characters of a-z, 0-9 and '-'")
    if not (directory / LORA_WEIGHTS_FILE).is_file():
        raise UserInputError(f"{directory} holds no {LORA_WEIGHTS_FILE}; expected a diffusers-format LoRA directory")
    card = read_adapter_card(directory)  # an unreadable card is refused here, not when a request needs it
    base = Path(base_model).name
    fine_tuned = f"ft:{base}:{tenant}:{suffix}"
    client = tracking_client(settings)
    experiment_id = tenant_experiment_id(client, settings, tenant)
    run = client.create_run(
        experiment_id,
        run_name=f"{suffix}-import",
        tags={
            f"{TAG_PREFIX}tenant": tenant,
            f"{TAG_PREFIX}base_model": base,
            f"{TAG_PREFIX}fine_tuned_model": fine_tuned,
            f"{TAG_PREFIX}imported_from": str(directory.resolve()),
        },
    )
    client.log_artifacts(run.info.run_id, str(directory), "adapter")
    client.set_terminated(run.info.run_id)
    tags = {
        f"{TAG_PREFIX}tenant": tenant,
        f"{TAG_PREFIX}base_model": base,
        f"{TAG_PREFIX}fine_tuned_model": fine_tuned,
        f"{TAG_PREFIX}run_id": run.info.run_id,
    }
    return register_adapter(
        settings,
        registered_model_name(tenant, suffix, base),
        f"{run.info.artifact_uri}/adapter",
        run.info.run_id,
        tags,
        f"imported from {directory}",
        adapter_sha256(directory),
        card.base_fingerprint if card is not None else None,
    )
