"""What a generator replica does for one job: apply the adapter, sample, watermark, encode, sign, store, record.

Kept free of Ray Serve so the bench can time exactly the code a replica runs; `generator` wraps
it in a deployment. One generation runs at a time per replica (`lock`): adapters are activated on
the shared transformer, so two interleaved requests would run with each other's adapter.
"""

from __future__ import annotations

import hashlib
import io
import logging
import tempfile
import threading
import time
from pathlib import Path

from PIL import Image

from reelforge.errors import ReelforgeError
from reelforge.models.loading import VideoModel, load_model
from reelforge.models.lora import activate_adapter
from reelforge.models.sampling import GenerationSettings, generate
from reelforge.models.video_io import Video, write_mp4
from reelforge.platform.config import GeneratorConfig, ServeAppConfig
from reelforge.platform.serving.adapter_loader import LoadedAdapter
from reelforge.platform.serving.generation_limits import (
    ModelCapabilities,
    capabilities_of,
)
from reelforge.platform.stores.audit_log import VIDEO_COMPLETED, VIDEO_FAILED, AuditLog
from reelforge.platform.stores.blob_store import BlobStore
from reelforge.platform.stores.usage import GENERATION, UsageMeter
from reelforge.platform.stores.video_jobs import (
    COMPLETED,
    FAILED,
    VideoJob,
    VideoJobStore,
)
from reelforge.provenance.manifest import GenerationClaims
from reelforge.provenance.stamping import ProvenanceStamper

logger = logging.getLogger(__name__)
PROGRESS_WRITE_INTERVAL_S = 0.25
DENOISE_SHARE = 95  # progress percent reached when denoising ends; decode and encode take the rest


def encode_mp4(video: Video) -> bytes:
    """H.264 MP4 bytes of `video`."""
    with tempfile.TemporaryDirectory() as tmp:
        path = write_mp4(video, Path(tmp) / "video.mp4")
        return path.read_bytes()


def encode_thumbnail(video: Video) -> bytes:
    """JPEG of the middle frame."""
    buffer = io.BytesIO()
    Image.fromarray(video.frames[video.num_frames // 2]).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


class GenerationWorker:
    """A loaded base model plus the stores it reports to."""

    def __init__(self, app: ServeAppConfig, generator: GeneratorConfig, device: str | None = None) -> None:
        self.app = app
        self.settings = app.settings()
        self.model: VideoModel = load_model(
            generator.model, self.settings, model_path=generator.model_path, device=device
        )
        self.jobs = VideoJobStore(self.settings.resolved_database_url, app.max_attempts)
        self.blobs = BlobStore(self.settings.resolved_storage_url)
        self.lock = threading.Lock()
        self.capabilities: ModelCapabilities = capabilities_of(self.model)
        self.meter = UsageMeter(self.settings.resolved_database_url)
        self.audit = AuditLog(self.settings.resolved_database_url)
        self.stamper = ProvenanceStamper(self.app.provenance, self.settings)

    def run(
        self, video_id: str, adapter: LoadedAdapter | None, replica: str, adapter_wait_s: float | None = None
    ) -> dict:
        """Generate job `video_id` with `adapter` (None: the base model); returns its final status.

        `adapter_wait_s` is how long the replica took to have the adapter ready (cold load or cache hit).
        """
        job = self.jobs.start(video_id, replica, self.app.job_lease_s)
        if job is None:  # finished meanwhile (a retried dispatch of a job another replica completed)
            current = self.jobs.peek(video_id)
            return {"id": video_id, "status": current.status if current else "missing"}
        try:
            timings = self._generate_and_store(job, adapter)
            timings["adapter_wait_s"] = None if adapter_wait_s is None else round(adapter_wait_s, 4)
        except ReelforgeError as exc:
            return self.fail(job, replica, exc.code, exc.message)
        except Exception as exc:  # a bug or an out-of-memory: the job fails visibly, the replica lives on
            logger.exception("generation of %s failed", video_id)
            return self.fail(job, replica, "generation_failed", f"{type(exc).__name__}: {exc}")
        video_sha256 = timings.pop("video_sha256")
        finished = self.jobs.complete(video_id, time.time() + self.app.video_ttl_s, timings)
        # Metered: the seconds the model held its device for this video, and the frames it made.
        self.meter.record(
            job.tenant,
            GENERATION,
            video_id,
            job.model,
            job.adapter,
            self.model.device.type,
            timings["generate_s"],
            job.num_frames,
        )
        self.audit.record(
            job.tenant,
            f"generator:{replica}",
            VIDEO_COMPLETED,
            video_id,
            model=job.model,
            adapter=job.adapter,
            adapter_sha256=adapter.sha256 if adapter else None,
            video_sha256=video_sha256,
            seed=job.seed,
            attempts=finished.attempts if finished else None,
        )
        if finished is not None and finished.deleted:  # deleted while it ran: its files go now
            self.blobs.remove(job.tenant, video_id)
            self.jobs.mark_files_removed(video_id)
        return {"id": video_id, "status": COMPLETED, "timings": timings}

    def fail(self, job: VideoJob, replica: str, code: str, message: str) -> dict:
        """Mark `job` failed with a client-visible error and audit it."""
        self.jobs.fail(job.id, code, message)
        self.audit.record(
            job.tenant,
            f"generator:{replica}",
            VIDEO_FAILED,
            job.id,
            model=job.model,
            adapter=job.adapter,
            error_code=code,
            error=message[:500],
        )
        return {"id": job.id, "status": FAILED}

    def _generate_and_store(self, job: VideoJob, adapter: LoadedAdapter | None) -> dict:
        last_write = [0.0]

        def progress(step: int, total: int) -> None:
            now = time.monotonic()
            if step == total or now - last_write[0] >= PROGRESS_WRITE_INTERVAL_S:
                last_write[0] = now
                self.jobs.report_progress(job.id, DENOISE_SHARE * step // total, self.app.job_lease_s)

        settings = GenerationSettings(
            prompt=job.prompt,
            num_frames=job.num_frames,
            height=job.height,
            width=job.width,
            steps=job.steps,
            guidance=job.guidance,
            seed=job.seed,
            fps=job.fps,
        )
        started = time.perf_counter()
        with self.lock:
            activate_adapter(self.model, adapter.peft_name if adapter else None)
            video = generate(self.model, settings, progress=progress)
        generated = time.perf_counter()
        frames, watermark_id = self.stamper.watermark(video.frames, job.id, job.tenant)
        video = Video(frames, video.fps)
        claims = GenerationClaims(
            job.id,
            job.tenant,
            job.model,
            self.model.name,
            job.adapter,
            adapter.sha256 if adapter else None,
            watermark_id,
        )
        mp4 = self.stamper.sign(encode_mp4(video), claims)
        stamped = time.perf_counter()
        self.blobs.put(job.tenant, job.id, "video", mp4)
        self.blobs.put(job.tenant, job.id, "thumbnail", encode_thumbnail(video))
        return {
            "generate_s": round(generated - started, 4),
            "provenance_s": round(stamped - generated, 4),
            "store_s": round(time.perf_counter() - stamped, 4),
            "adapter": adapter.ref.key if adapter else None,
            "video_sha256": hashlib.sha256(mp4).hexdigest(),
            "watermark_id": watermark_id,
        }
