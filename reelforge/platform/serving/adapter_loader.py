"""Tenant adapters on a generator replica: fetched from the MLflow registry, checked, loaded into peft.

The multiplexed id of a request is `AdapterRef.key` (`acme.brand.reelforge-tiny/3`): the registry
name and the version the ingress resolved from the alias when it accepted the job. A promotion
therefore reaches new jobs at once, and a cached adapter is never a stale one.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from reelforge.errors import AdapterError
from reelforge.jobs.adapter_registry import AdapterNotFoundError, adapter_sha256
from reelforge.jobs.run_tracking import tracking_client
from reelforge.models.loading import VideoModel
from reelforge.models.lora import load_adapter, loaded_adapters, unload_adapter
from reelforge.platform.stores.adapter_digests import AdapterDigestStore
from reelforge.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdapterRef:
    """One registered adapter version."""

    name: str
    version: int

    @property
    def key(self) -> str:
        return f"{self.name}/{self.version}"

    @classmethod
    def parse(cls, key: str) -> AdapterRef:
        name, _, version = key.rpartition("/")
        if not name or not version.isdigit():
            raise AdapterError(f"adapter key {key!r} is not of the form NAME/VERSION")
        return cls(name, int(version))

    @property
    def peft_name(self) -> str:
        """An identifier peft accepts as a module attribute, unique per name and version."""
        return "tenant_" + hashlib.sha1(self.key.encode()).hexdigest()[:16]


def fetch_adapter(settings: Settings, ref: AdapterRef) -> Path:
    """A local directory holding `ref`'s files, downloaded once and checked against the SHA-256 the
    platform recorded when it registered the version (never against the registry's own tags)."""
    from mlflow.artifacts import download_artifacts
    from mlflow.exceptions import MlflowException

    recorded = AdapterDigestStore(settings.resolved_database_url).expected(ref.name, ref.version)
    if recorded is None:
        raise AdapterError(
            f"adapter {ref.key} was not registered through this platform (no recorded SHA-256); refusing to serve it"
        )
    target = settings.home / "adapter-cache" / ref.name / str(ref.version)
    marker = target / ".verified"
    if marker.is_file():
        if marker.read_text() == recorded.sha256:
            return target / "adapter"
        shutil.rmtree(target, ignore_errors=True)  # a reused version number: the cached copy is another adapter
    client = tracking_client(settings)
    try:
        version = client.get_model_version(ref.name, str(ref.version))
    except MlflowException as exc:
        raise AdapterNotFoundError(f"adapter {ref.key} is not in the registry") from exc
    # A private staging directory: replicas on one node may fetch the same adapter at once.
    staging = target.with_name(f"{ref.version}.{uuid.uuid4().hex}.partial")
    staging.mkdir(parents=True)
    uri = settings.resolved_mlflow_tracking_uri
    local = Path(download_artifacts(artifact_uri=version.source, dst_path=str(staging), tracking_uri=uri))
    if version.source != recorded.source:
        shutil.rmtree(staging, ignore_errors=True)
        raise AdapterError(
            f"adapter {ref.key} now points at {version.source}, not where it was registered; refusing to serve it"
        )
    found = adapter_sha256(local)
    if found != recorded.sha256:
        shutil.rmtree(staging, ignore_errors=True)
        raise AdapterError(
            f"adapter {ref.key} at {version.source} does not match the SHA-256 recorded when it was registered "
            f"({found[:12]}... is not {recorded.sha256[:12]}...); refusing to serve it"
        )
    if local.name != "adapter":
        local = local.rename(staging / "adapter")
    (staging / ".verified").write_text(recorded.sha256)
    try:
        staging.rename(target)
    except OSError:  # another replica finished first; its copy is the same verified bytes
        shutil.rmtree(staging, ignore_errors=True)
    return target / "adapter"


class LoadedAdapter:
    """An adapter loaded into a replica's transformer; Serve's LRU calls `__del__` to unload it."""

    def __init__(
        self, model: VideoModel, ref: AdapterRef, lock: threading.Lock, load_seconds: float, sha256: str = ""
    ) -> None:
        self.model = model
        self.ref = ref
        self.sha256 = sha256  # as registered: what the audit log and provenance name
        self.lock = lock
        self.load_seconds = load_seconds
        self._unloaded = False

    @property
    def peft_name(self) -> str:
        return self.ref.peft_name

    def __del__(self) -> None:
        if self._unloaded:
            return
        self._unloaded = True
        # The lock: never change the module tree while a generation runs through it.
        with self.lock:
            if self.peft_name in loaded_adapters(self.model):
                unload_adapter(self.model, self.peft_name)
                logger.info("unloaded adapter %s", self.ref.key)


def load_registered_adapter(model: VideoModel, settings: Settings, key: str, lock: threading.Lock) -> LoadedAdapter:
    """Fetch (cached on disk) and load `key` into `model` under `lock`; timed for the bench."""
    started = time.perf_counter()
    ref = AdapterRef.parse(key)
    directory = fetch_adapter(settings, ref)
    with lock:
        if ref.peft_name not in loaded_adapters(model):
            load_adapter(model, directory, ref.peft_name)
    seconds = time.perf_counter() - started
    logger.info("loaded adapter %s in %.3fs", key, seconds)
    return LoadedAdapter(model, ref, lock, seconds, (directory.parent / ".verified").read_text())
