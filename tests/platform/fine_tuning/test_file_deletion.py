"""Deleting an uploaded file removes what was derived from it: the extracted footage and cached
latents of its ingestion and the working copies of finished jobs; a running job's copy is kept and
the response says so. Through the API app (TestClient) on real stores; the derived directories are
laid out where the fine-tuning driver puts them."""

from __future__ import annotations

from pathlib import Path

from reelforge.jobs.training_data import ingested_dir_for
from reelforge.models.tiny.footage import write_footage
from reelforge.platform.stores.fine_tune_jobs import FineTuneStore
from tests.harness import queued_fine_tune_job, zip_folder


def _derived(path: Path) -> Path:
    (path / "shards").mkdir(parents=True)
    (path / "shards" / "clip.parquet").write_bytes(b"latents")
    return path


def test_deleting_a_file_removes_its_footage_and_latents_and_says_what_it_keeps(api, tmp_path):
    write_footage(tmp_path / "footage", count=2, seed=3)
    upload = api.acme.post(
        "/v1/files", data={"purpose": "fine-tune"}, files={"file": ("look.zip", zip_folder(tmp_path / "footage"))}
    )
    file_id = upload.json()["id"]
    settings = api.services.files.settings
    store = FineTuneStore(settings.resolved_database_url)
    finished, running = (queued_fine_tune_job(store, training_file=file_id, workers=1) for _ in range(2))
    store.mark_running(finished, "cpu", 1, 10)
    store.fail(finished, "training_failed", "it ended")
    store.mark_running(running, "cpu", 1, 10)
    blob = Path(api.services.files.blobs.upload_path("acme", file_id))
    ingested = _derived(ingested_dir_for(settings, "acme", blob))  # latents of the uploaded archive
    finished_work = _derived(settings.home / "finetune" / finished)
    running_work = _derived(settings.home / "finetune" / running)
    other_tenant = _derived(ingested_dir_for(settings, "globex", blob))

    response = api.acme.delete(f"/v1/files/{file_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deleted"] and body["derived_data_removed"] == 2
    assert body["kept"] == [f"fine-tuning job {running} is running: its working copy goes when it ends"]
    assert not blob.exists() and not ingested.exists() and not finished_work.exists()
    assert running_work.exists() and other_tenant.exists()
    assert api.acme.get(f"/v1/files/{file_id}").status_code == 404
