"""What a generator replica does for one job: apply the adapter, sample, watermark, encode, sign, store, record.

Kept free of Ray Serve so the bench can time exactly the code a replica runs; `generator` wraps
it in a deployment. One generation runs at a time per replica (`lock`): adapters are activated on
the shared transformer, so two interleaved requests would run with each other's adapter.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time

import numpy as np
from PIL import Image

from reelforge.errors import ReelforgeError
from reelforge.models.loading import VideoModel, load_model
from reelforge.models.lora import activate_adapter
from reelforge.models.sampling import GenerationSettings, generate
from reelforge.models.video_io import Video
from reelforge.platform.config import GeneratorConfig, ServeAppConfig
from reelforge.platform.serving.adapter_loader import LoadedAdapter
from reelforge.platform.serving.first_frames import frame_of_png
from reelforge.platform.serving.generation_limits import (
    ModelCapabilities,
    capabilities_of,
)
from reelforge.platform.serving.lease_keeper import LeaseKeeper, LeaseLostError
from reelforge.platform.stores.audit_log import VIDEO_COMPLETED, VIDEO_FAILED, VIDEO_HELD, AuditEvent
from reelforge.platform.stores.blob_store import BlobStore
from reelforge.platform.stores.usage import GENERATION, usage_record
from reelforge.platform.stores.video_jobs import (
    COMPLETED,
    FAILED,
    VideoJob,
    VideoJobStore,
)
from reelforge.provenance.manifest import GenerationClaims
from reelforge.provenance.stamping import ProvenanceStamper
from reelforge.safety.face_detection import FaceScan, shared_detector
from reelforge.safety.output_review import review_outcome

logger = logging.getLogger(__name__)
PROGRESS_WRITE_INTERVAL_S = 0.25
DENOISE_SHARE = 95  # progress percent reached when denoising ends; decode and encode take the rest


def encode_thumbnail(video: Video) -> bytes:
    """JPEG of the middle frame."""
    buffer = io.BytesIO()
    Image.fromarray(video.frames[video.num_frames // 2]).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def job_settings(job: VideoJob, image: np.ndarray | None = None) -> GenerationSettings:
    """The sampler's settings for a recorded job: every field the request fixed (None: the model's default)."""
    return GenerationSettings(
        image=image,
        prompt=job.prompt,
        negative_prompt=job.negative_prompt,
        num_frames=job.num_frames,
        height=job.height,
        width=job.width,
        steps=job.steps,
        guidance=job.guidance,
        guidance_2=job.guidance_2,
        seed=job.seed,
        fps=job.fps,
    )


class GenerationWorker:
    """A loaded base model plus the stores it reports to."""

    def __init__(self, app: ServeAppConfig, generator: GeneratorConfig, device: str | None = None) -> None:
        self.app = app
        self.settings = app.settings()
        self.model: VideoModel = load_model(
            generator.model, self.settings, model_path=generator.model_path, device=device
        )
        self.jobs = VideoJobStore(self.settings.resolved_database_url, app.retry_policy())
        self.blobs = BlobStore(self.settings.resolved_storage_url)
        self.lock = threading.Lock()
        self.capabilities: ModelCapabilities = capabilities_of(self.model)
        self.stamper = ProvenanceStamper(self.app.provenance, self.settings)
        self.faces = shared_detector()
        self.lease_renew_every_s: float | None = None  # None: a third of the lease

    def run(
        self,
        video_id: str,
        fence: int,
        adapter: LoadedAdapter | None,
        replica: str,
        adapter_wait_s: float | None = None,
    ) -> dict:
        """Generate claim `fence` of job `video_id` with `adapter` (None: the base model); returns its final status.

        `adapter_wait_s` is how long the replica took to have the adapter ready (cold load or cache hit).
        The lock is taken before the job starts, so a job waiting for the model is not yet in progress;
        from the start until its end the lease is renewed from here.
        """
        lease_s = self.app.job_lease_s
        self.lock.acquire()
        locked = True
        try:
            job = self.jobs.start(video_id, fence, replica, lease_s)
            if job is None:  # finished meanwhile, or a newer attempt holds it
                current = self.jobs.peek(video_id)
                return {"id": video_id, "status": current.status if current else "missing", "superseded": True}
            with LeaseKeeper(self.jobs, video_id, fence, lease_s, self.lease_renew_every_s) as lease:
                try:
                    started = time.perf_counter()
                    activate_adapter(self.model, adapter.peft_name if adapter else None)
                    video = self.sample(job, lease)
                    generate_s = time.perf_counter() - started
                    self.lock.release()
                    locked = False  # stamping and storing need not hold the model
                    lease.check()
                    scanned_at = time.perf_counter()
                    policy = self.app.review.policy_for(job.tenant)
                    scan = self.faces.scan_frames(video.frames, video.fps, policy.frames_scanned)  # before labels
                    face_scan_s = time.perf_counter() - scanned_at
                    timings = self._stamp_and_store(job, video, adapter)
                    timings["face_scan_s"] = round(face_scan_s, 4)
                    lease.check()
                except LeaseLostError as exc:
                    logger.warning("%s; stopping this attempt", exc)
                    self.blobs.remove_attempt(job.tenant, video_id, fence)
                    return {"id": video_id, "status": "superseded", "superseded": True}
                except ReelforgeError as exc:
                    return self.fail(job, replica, exc.code, exc.message)
                except Exception as exc:  # a bug or an out-of-memory: the job fails visibly, the replica lives on
                    logger.exception("generation of %s failed", video_id)
                    return self.fail(job, replica, "generation_failed", f"{type(exc).__name__}: {exc}")
                timings["generate_s"] = round(generate_s, 4)
                timings["adapter_wait_s"] = None if adapter_wait_s is None else round(adapter_wait_s, 4)
                return self._complete(job, adapter, replica, timings, scan, review_outcome(scan, policy))
        finally:
            if locked:
                self.lock.release()

    def _complete(
        self,
        job: VideoJob,
        adapter: LoadedAdapter | None,
        replica: str,
        timings: dict,
        scan: FaceScan,
        review: str | None,
    ) -> dict:
        """Record the job completed with its usage and audit records (and its hold for review, if the
        tenant's policy holds a video that shows a face), if this attempt still holds it."""
        video_sha256 = timings.pop("video_sha256")
        # Metered: the seconds the model held its device for this video, and the frames it made.
        usage = usage_record(
            job.tenant,
            GENERATION,
            job.id,
            job.model,
            job.adapter,
            self.model.device.type,
            timings["generate_s"],
            job.num_frames,
        )
        audit = AuditEvent(
            tenant=job.tenant,
            actor=f"generator:{replica}",
            action=VIDEO_COMPLETED,
            subject=job.id,
            details={
                "model": job.model,
                "adapter": job.adapter,
                "adapter_sha256": adapter.sha256 if adapter else None,
                "video_sha256": video_sha256,
                "seed": job.seed,
                "attempts": job.attempts,
                "fence": job.fence,
                "faces": scan.to_dict(),
            },
        )
        records = [usage, audit]
        held_note = None
        if review is not None:
            held_note = f"held for review: {scan.summary()}"
            records.append(
                AuditEvent(
                    tenant=job.tenant,
                    actor=f"generator:{replica}",
                    action=VIDEO_HELD,
                    subject=job.id,
                    details={"faces": scan.to_dict(), "video_sha256": video_sha256},
                )
            )
        expires_at = time.time() + self.app.video_ttl_s
        finished = self.jobs.complete(
            job.id, job.fence, expires_at, timings, records=records, held_for_review=held_note
        )
        if finished is None:  # a newer attempt took over between the last check and now
            self.blobs.remove_attempt(job.tenant, job.id, job.fence)
            return {"id": job.id, "status": "superseded", "superseded": True}
        if finished.deleted:  # deleted while it ran: its files go now
            self.blobs.remove(job.tenant, job.id)
            self.jobs.mark_files_removed(job.id)
        return {"id": job.id, "status": COMPLETED, "timings": timings, "review": finished.review}

    def fail(self, job: VideoJob, replica: str, code: str, message: str) -> dict:
        """Mark claim `job.fence` of `job` failed with a client-visible error, audited in the same transaction."""
        audit = AuditEvent(
            tenant=job.tenant,
            actor=f"generator:{replica}",
            action=VIDEO_FAILED,
            subject=job.id,
            details={"model": job.model, "adapter": job.adapter, "error_code": code, "error": message[:500]},
        )
        if not self.jobs.fail(job.id, code, message, fence=job.fence, records=[audit]):
            return {"id": job.id, "status": "superseded", "superseded": True}
        return {"id": job.id, "status": FAILED}

    def sample(self, job: VideoJob, lease: LeaseKeeper) -> Video:
        """Denoise the job's video with the active adapter, reporting progress (which also renews the lease)."""
        last_write = [0.0]

        def progress(step: int, total: int) -> None:
            lease.check()
            now = time.monotonic()
            if step == total or now - last_write[0] >= PROGRESS_WRITE_INTERVAL_S:
                last_write[0] = now
                percent = DENOISE_SHARE * step // total
                if not self.jobs.report_progress(job.id, job.fence, percent, self.app.job_lease_s):
                    lease.lost.set()
                    lease.check()

        image = None
        if job.reference_sha256 is not None:
            image = frame_of_png(self.blobs.read_reference(job.tenant, job.id), job.reference_sha256)
        return generate(self.model, job_settings(job, image), progress=progress)

    def _stamp_and_store(self, job: VideoJob, video: Video, adapter: LoadedAdapter | None) -> dict:
        """Label, watermark, encode and sign the video, and store it and its thumbnail under this attempt's fence."""
        stamped_at = time.perf_counter()
        claims = GenerationClaims(
            job.id, job.tenant, job.model, self.model.name, job.adapter, adapter.sha256 if adapter else None, None
        )
        stamped = self.stamper.stamp(video, claims)
        mp4, watermark_id = stamped.mp4, stamped.watermark_id
        stored_at = time.perf_counter()
        self.blobs.put(job.tenant, job.id, "video", mp4, fence=job.fence)
        self.blobs.put(job.tenant, job.id, "thumbnail", encode_thumbnail(stamped.video), fence=job.fence)
        return {
            "provenance_s": round(stored_at - stamped_at, 4),
            "store_s": round(time.perf_counter() - stored_at, 4),
            "adapter": adapter.ref.key if adapter else None,
            "video_sha256": hashlib.sha256(mp4).hexdigest(),
            "watermark_id": watermark_id,
        }
