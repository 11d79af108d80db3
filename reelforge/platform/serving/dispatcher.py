"""Moves queued jobs from the job store to generator deployments, and keeps their leases alive.

It runs inside each ingress replica as one asyncio task. Each pass it requeues jobs whose lease
ran out, claims queued jobs that are due up to each deployment's capacity (max replicas x max ongoing
requests, so the autoscaler sees the backlog as ongoing requests), and sends each to its
deployment with the job's adapter as the multiplexed model id and the claim's fencing token.
While a call is pending the dispatcher renews the claim's lease (the replica renews it too once it
starts the job); if the call fails (replica lost, adapter unreachable) the claim is released, and
the job is retried after a back-off or, out of attempts, failed. Expired and deleted videos' files are removed here too.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

from reelforge.platform.stores.blob_store import BlobStore
from reelforge.platform.stores.video_jobs import VideoJob, VideoJobStore

logger = logging.getLogger(__name__)
CLEANUP_INTERVAL_S = 30.0
PARTIAL_FILE_AGE_S = 3600.0  # a partial write untouched this long belongs to a dead process


class JobDispatcher:
    """The loop that feeds generator deployments from the job store."""

    def __init__(
        self,
        jobs: VideoJobStore,
        blobs: BlobStore,
        handles: dict,
        capacity: dict[str, int],
        lease_s: float,
        interval_s: float,
        fallback: dict[str, str] | None = None,
    ) -> None:
        self.jobs = jobs
        self.blobs = blobs
        self.handles = handles  # deployment name -> DeploymentHandle
        self.capacity = capacity
        self.fallback = fallback or {}  # base model -> shared deployment, for jobs of removed deployments
        self._rerouted = False
        self.lease_s = lease_s
        self.interval_s = interval_s
        self.owner = f"dispatcher-{uuid.uuid4().hex[:12]}"
        self.inflight: dict[str, dict[str, int]] = {name: {} for name in handles}  # video id -> fence
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task] = set()
        self._last_renew = 0.0
        self._last_cleanup = 0.0
        self._cleanup: asyncio.Task | None = None

    def wake(self) -> None:
        """Dispatch now rather than at the next interval (a job was just accepted)."""
        self._wake.set()

    async def drain(self) -> None:
        """Wait until every send in flight has returned (or failed and released its job)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def run(self) -> None:
        """Dispatch forever; one failing pass is logged and the next one runs."""
        while True:
            try:
                await self.dispatch_once()
            except Exception:  # the database may be briefly unreachable; keep the loop alive
                logger.exception("dispatch pass failed")
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    async def dispatch_once(self) -> int:
        """One pass: recover, renew, claim and send; returns how many jobs it sent."""
        now = time.monotonic()
        if not self._rerouted:  # once per start: the config may have dropped a dedicated deployment
            moved, failed = await asyncio.to_thread(self.jobs.reroute, set(self.handles), self.fallback)
            self._rerouted = True
            if moved or failed:
                logger.warning("jobs of removed deployments: %d moved to shared ones, %d failed", moved, failed)
        recovered = await asyncio.to_thread(self.jobs.recover_expired_leases)
        if recovered:
            logger.warning("requeued %d jobs whose lease expired: %s", len(recovered), recovered)
        if now - self._last_renew >= self.lease_s / 3:
            self._last_renew = now
            pending = {video_id: fence for claims in self.inflight.values() for video_id, fence in claims.items()}
            if pending:
                await asyncio.to_thread(self.jobs.renew_leases, pending, self.owner, self.lease_s)
        sent = 0
        for deployment, handle in self.handles.items():
            free = self.capacity[deployment] - len(self.inflight[deployment])
            claimed = await asyncio.to_thread(self.jobs.claim, self.owner, deployment, free, self.lease_s)
            for job in claimed:
                self.inflight[deployment][job.id] = job.fence
                task = asyncio.create_task(self._send(handle, job))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                sent += 1
        if now - self._last_cleanup >= CLEANUP_INTERVAL_S and (self._cleanup is None or self._cleanup.done()):
            # Not awaited: removing many files from an object store must not delay the next renewals.
            self._last_cleanup = now
            self._cleanup = asyncio.create_task(self._clean_up())
        return sent

    async def _send(self, handle, job: VideoJob) -> None:
        routed = handle.options(multiplexed_model_id=job.adapter) if job.adapter else handle
        try:
            await routed.generate.remote(job.id, job.fence)
        except Exception as exc:  # the replica died, the deployment is being torn down, the adapter is unreachable
            reason = f"{type(exc).__name__}: {str(exc)[-500:]}"
            logger.warning("dispatch of %s (attempt %d) to %s failed: %s", job.id, job.attempts, job.deployment, reason)
            await asyncio.to_thread(self.jobs.release, job.id, job.fence, reason)
        finally:
            self.inflight[job.deployment].pop(job.id, None)
            self.wake()

    async def _clean_up(self) -> None:
        try:
            removed = await asyncio.to_thread(self.remove_expired_files)
        except Exception:  # the store may be briefly unreachable; the next interval tries again
            logger.exception("removing expired videos' files failed")
            return
        if removed:
            logger.info("removed the files of %d expired or deleted videos", removed)

    def remove_expired_files(self) -> int:
        """Delete the files of expired or deleted videos; returns how many videos were cleaned."""
        done = 0
        for job in self.jobs.files_to_remove():
            self.blobs.remove(job.tenant, job.id)
            self.jobs.mark_files_removed(job.id)
            done += 1
        swept = self.blobs.sweep_partials(PARTIAL_FILE_AGE_S)
        if swept:
            logger.info("swept %d partial files left by dead uploads or stores", swept)
        return done
