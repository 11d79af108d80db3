"""Keeps a running job's lease alive from the replica that runs it, for as long as the call runs.

The dispatcher renews leases too, but only while its own call is pending; a replica that has
started a job is the one that knows it is alive. Renewing from a thread of the replica means a
long denoising step, an adapter load or an MP4 encode never lets the lease lapse, while a replica
that dies or hangs stops renewing and the job is retried elsewhere.
"""

from __future__ import annotations

import logging
import threading

from reelforge.platform.stores.video_jobs import VideoJobStore

logger = logging.getLogger(__name__)


class LeaseLostError(Exception):
    """Another attempt holds the job now: this one stops without writing anything more."""


class LeaseKeeper:
    """A daemon thread renewing claim `fence` of a job every `lease_s / 3` until stopped or superseded."""

    def __init__(
        self, jobs: VideoJobStore, video_id: str, fence: int, lease_s: float, every_s: float | None = None
    ) -> None:
        self.jobs = jobs
        self.video_id = video_id
        self.fence = fence
        self.lease_s = lease_s
        self.every_s = lease_s / 3 if every_s is None else every_s
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{video_id}", daemon=True)

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()

    def check(self) -> None:
        """Raise LeaseLostError if another attempt took the job over."""
        if self.lost.is_set():
            raise LeaseLostError(f"{self.video_id}: claim {self.fence} lost its lease to a newer attempt")

    def _renew(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                if not self.jobs.renew(self.video_id, self.fence, self.lease_s):
                    self.lost.set()
                    return
            except Exception:  # a database blip: the lease has slack for two more tries
                logger.warning("renewing the lease of %s failed", self.video_id, exc_info=True)
