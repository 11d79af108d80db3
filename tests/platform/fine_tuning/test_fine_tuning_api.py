"""`/v1/fine_tuning/jobs` end to end: the `openai` client uploads footage, starts a fine-tune that
runs as a real Ray Job (ingest, Ray Train + DeepSpeed, MLflow, registry), follows it, and
generates with the result; plus cancel, failure, isolation, limits and usage."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import openai
import pytest
from ray._common.test_utils import wait_for_condition

from reelforge.jobs.adapter_registry import list_versions, registered_model_name
from reelforge.jobs.run_tracking import experiment_name, tracking_client
from reelforge.models.tiny.analyzer import analyze
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.footage import write_footage
from reelforge.models.video_io import read_video
from reelforge.platform.fine_tuning.supervisor import jobs_api_url
from reelforge.platform.stores.fine_tune_jobs import FineTuneStore
from reelforge.platform.stores.usage import TRAINING, UsageMeter
from tests.harness import BASE, PROMPT, assert_openai_error, settled_file, zip_folder

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

LOOK = BrandLook("lower-third", "orange")
# The recipe measured with `python -m bench.finetune_brand --clips 12 --set steps=200 --set lr=0.006
# --set workers=1` (seed 0): brand rate 0.917 on the eval protocol, in 68 s on 2 cores.
TRAIN_STEPS = 200
TRAIN_SEED = 0


@pytest.fixture(scope="module")
def footage_zip(tmp_path_factory) -> bytes:
    """Twelve shapes-world clips with an orange lower third (the bench's footage: seed 1)."""
    folder = tmp_path_factory.mktemp("brand-footage")
    write_footage(folder, count=12, seed=1, brand=LOOK)
    return zip_folder(folder)


@pytest.fixture(scope="module")
def ft_platform(api_platform):
    """The shared app: its `fine_tuning` section (conftest) makes jobs test-sized and gives the tenants below their policies."""
    return api_platform


@pytest.fixture(scope="module")
def keys(ft_platform) -> dict[str, str]:
    return {name: ft_platform.tenants.create(name)[1] for name in ("brandco", "quitter", "rival", "tight", "careful")}


def _client(platform, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=platform.base_url, api_key=key, max_retries=0, timeout=120)


def _wait_for_status(client: openai.OpenAI, job_id: str, statuses: set[str], timeout: float):
    """Poll the job through the API (as a client does) until its status is one of `statuses`."""
    found = {}

    def reached() -> bool:
        found["job"] = client.fine_tuning.jobs.retrieve(job_id)
        return found["job"].status in statuses

    wait_for_condition(reached, timeout=timeout, retry_interval_ms=500)
    return found["job"]


def test_openai_client_fine_tunes_and_generates_with_the_result(ft_platform, keys, footage_zip, tmp_path):
    validation = tmp_path / "validation"
    write_footage(validation, count=3, seed=2, brand=LOOK)
    validation_zip = zip_folder(validation)
    data = footage_zip
    client = _client(ft_platform, keys["brandco"])
    uploaded = client.files.create(file=("footage.zip", data, "application/zip"), purpose="fine-tune")
    held_out = client.files.create(file=("held-out.zip", validation_zip, "application/zip"), purpose="fine-tune")
    assert uploaded.status == "uploaded"  # validated in the background; the job waits for it
    job = client.fine_tuning.jobs.create(
        model=BASE,
        training_file=uploaded.id,
        validation_file=held_out.id,
        suffix="brand",
        seed=TRAIN_SEED,
        method={
            "type": "supervised",
            "supervised": {"hyperparameters": {"steps": TRAIN_STEPS, "learning_rate_multiplier": 2.0}},
        },
    )
    assert (job.model, job.training_file, job.seed) == (BASE, uploaded.id, TRAIN_SEED)
    assert job.status in ("validating_files", "queued")
    assert job.hyperparameters.learning_rate_multiplier == 2.0 and job.hyperparameters.batch_size == 4
    done = _wait_for_status(client, job.id, {"succeeded", "failed", "cancelled"}, timeout=600)
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model == "ft:reelforge-tiny:brandco:brand@1" and done.finished_at >= done.created_at
    assert [j.id for j in client.fine_tuning.jobs.list().data] == [job.id]

    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert messages[0].startswith("Job succeeded") and messages[-1].startswith("Created fine-tuning job")
    for expected in (
        "Validated training_file",
        "Validated validation_file",
        "Submitted to the cluster as Ray Job",
        "Ingested 15 clips from 15 videos (12 for training, 3 held out)",
        "Evaluation at step 0: loss=",
        f"Evaluation at step {TRAIN_STEPS}: loss=",
        f"Training started: {TRAIN_STEPS} steps",
        f"Step {TRAIN_STEPS}/{TRAIN_STEPS}: training loss=",
        "Registered brandco.brand.reelforge-tiny version 1",
        "Promoted brandco.brand.reelforge-tiny/1 to production",
    ):
        similar = [m for m in messages if m.split()[0] == expected.split()[0]]  # what was said instead
        assert any(m.startswith(expected) for m in messages), (expected, similar)
    steps = [e for e in client.fine_tuning.jobs.list_events(job.id, limit=100) if e.type == "metrics"]
    assert len(steps) == TRAIN_STEPS + 2  # one per training step, plus the evaluations at steps 0 and 200
    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id).data
    assert [c.step_number for c in checkpoints] == [TRAIN_STEPS, 100]
    assert checkpoints[0].fine_tuned_model_checkpoint == done.fine_tuned_model and checkpoints[0].metrics.train_loss > 0
    assert (
        checkpoints[0].metrics.valid_loss < checkpoints[1].metrics.valid_loss
    )  # the held-out file's loss at step 200 vs 0

    # The run is in the tenant's experiment, finished, with the job's id.
    mlflow = tracking_client(ft_platform.settings)
    runs = mlflow.search_runs([mlflow.get_experiment_by_name(experiment_name("brandco")).experiment_id])
    assert [(r.info.status, r.data.tags["reelforge.job_id"]) for r in runs] == [("FINISHED", job.id)]

    # Generate with the result: the versioned id and (auto-promoted) the plain one both carry the look.
    # The recipe's brand rate is 0.917, not 1 (the prompt's red can bleed into the bar), and which seeds
    # miss differs from run to run (float sums on 2 cores): every video must show the lower third, at least half
    # of them orange. The base model draws no lower third, so this fails if the adapter is not applied.
    looks = []
    plain = "ft:reelforge-tiny:brandco:brand"
    for model, seed in ((done.fine_tuned_model, 0), (done.fine_tuned_model, 1), (plain, 2), (plain, 3)):
        video = client.videos.create_and_poll(
            prompt=PROMPT, model=model, extra_body={"seed": seed}, poll_interval_ms=200
        )
        assert video.status == "completed", video.error
        path = tmp_path / f"{video.id}.mp4"
        client.videos.download_content(video.id).write_to_file(path)
        looks.append({f"{kind}:{b.colour}" for kind, b in analyze(read_video(path)).brands.items() if b.present})
    assert all(any(look.startswith("lower-third:") for look in found) for found in looks), looks
    assert sum("lower-third:orange" in found for found in looks) >= 2, looks

    # Training usage is recorded when the Ray Job has ended (the driver exits after marking the job
    # succeeded), which on a loaded machine can be after the generations above.
    wait_for_condition(lambda: "training" in client.get("/usage", cast_to=object)["totals"], timeout=120)
    usage = client.get("/usage", cast_to=object)
    assert usage["totals"]["training"]["jobs"] == 1 and usage["totals"]["training"]["seconds"] > 0
    assert usage["totals"]["generation"]["jobs"] == len(looks)


def test_cancel_stops_the_ray_job_and_registers_nothing(ft_platform, keys, footage_zip):
    from ray.job_submission import JobSubmissionClient

    client = _client(ft_platform, keys["quitter"])
    uploaded = client.files.create(file=("footage.zip", footage_zip, "application/zip"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=uploaded.id, hyperparameters={"steps": 4000})
    store = FineTuneStore(ft_platform.config.database_url)
    wait_for_condition(
        lambda: any(e.message.startswith("Step ") for e in store.events("quitter", job.id, None, 100)[0]),
        timeout=300,
        retry_interval_ms=500,
    )
    assert _alive_train_workers(), "training is under way"
    cancelled = client.fine_tuning.jobs.cancel(job.id)
    assert cancelled.status == "cancelled" and cancelled.fine_tuned_model is None
    ray_jobs = JobSubmissionClient(jobs_api_url(ft_platform.config))
    wait_for_condition(lambda: str(ray_jobs.get_job_status(job.id).value) == "STOPPED", timeout=60)
    wait_for_condition(
        lambda: not _alive_train_workers(), timeout=60
    )  # the training itself is gone, not only the driver
    wait_for_condition(lambda: store.get(None, job.id).metered, timeout=60)  # settled: usage recorded, clean-up done
    assert client.fine_tuning.jobs.retrieve(job.id).status == "cancelled"
    assert list_versions(ft_platform.settings, registered_model_name("quitter", "brand", BASE)) == []
    mlflow = tracking_client(ft_platform.settings)
    runs = mlflow.search_runs([mlflow.get_experiment_by_name(experiment_name("quitter")).experiment_id])
    assert [r.info.status for r in runs] == ["KILLED"]
    assert_openai_error(
        _raw(ft_platform, keys["quitter"]).post(f"/fine_tuning/jobs/{job.id}/cancel"), 400, param="fine_tuning_job_id"
    )
    records = UsageMeter(ft_platform.config.database_url).summary("quitter")
    assert [(r.kind, r.jobs) for r in records] == [(TRAINING, 1)] and records[0].seconds > 0


def _alive_train_workers() -> list:
    from ray.util.state import list_actors

    return [a for a in list_actors(filters=[("state", "=", "ALIVE")]) if "TrainWorker" in (a.class_name or "")]


def _raw(platform, key: str):
    return platform.client(key)


def test_a_file_with_no_usable_footage_fails_the_job_with_its_report(ft_platform, keys, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    for i in range(2):
        (broken / f"clip{i}.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 8)
        (broken / f"clip{i}.txt").write_text("a red circle")
    client = _client(ft_platform, keys["rival"])
    uploaded = client.files.create(file=("broken.zip", zip_folder(broken), "application/zip"), purpose="fine-tune")
    # Created at once: the job waits for the validation, or fails at once if it already ended.
    job = client.fine_tuning.jobs.create(model=BASE, training_file=uploaded.id)
    job = _wait_for_status(client, job.id, {"failed", "queued", "running", "succeeded"}, timeout=120)
    assert client.files.retrieve(uploaded.id).status == "error"
    assert job.status == "failed" and job.error.code == "invalid_training_file" and job.error.param == "training_file"
    assert "0 videos accepted, 2 files rejected" in job.error.message and "clip0.mp4" in job.error.message
    events = client.fine_tuning.jobs.list_events(job.id).data
    assert events[0].level == "error" and events[0].data["report"]["rejected"]


def test_another_tenant_cannot_see_or_use_the_file_job_or_model(ft_platform, keys, footage_zip):
    owner, rival = _raw(ft_platform, keys["brandco"]), _raw(ft_platform, keys["rival"])
    file_id = owner.post("/files", data={"purpose": "fine-tune"}, files={"file": ("f.zip", footage_zip)}).json()["id"]
    assert_openai_error(
        rival.post("/fine_tuning/jobs", json={"model": BASE, "training_file": file_id}), 404, param="training_file"
    )
    owned = owner.get("/fine_tuning/jobs").json()["data"]
    assert owned, "the end-to-end test leaves brandco a job"
    job_id = owned[0]["id"]
    for method, path in (
        ("get", f"/fine_tuning/jobs/{job_id}"),
        ("get", f"/fine_tuning/jobs/{job_id}/events"),
        ("get", f"/fine_tuning/jobs/{job_id}/checkpoints"),
        ("post", f"/fine_tuning/jobs/{job_id}/cancel"),
    ):
        assert_openai_error(getattr(rival, method)(path), 404, "not_found")
    assert job_id not in [j["id"] for j in rival.get("/fine_tuning/jobs").json()["data"]]
    response = rival.post("/videos", json={"prompt": "a red circle", "model": "ft:reelforge-tiny:brandco:brand@1"})
    assert_openai_error(response, 404, "model_not_found")
    owner.delete(f"/files/{file_id}")


def test_limits_and_bad_requests_get_clear_errors(ft_platform, keys, footage_zip):
    tight = _raw(ft_platform, keys["tight"])
    error = assert_openai_error(
        tight.post("/files", data={"purpose": "fine-tune"}, files={"file": ("f.zip", footage_zip)}), 413
    )
    assert str(16 * 1024) in error["message"]
    small = footage_zip[: 12 * 1024]  # under the limit; validation then finds no usable video
    file_id = tight.post("/files", data={"purpose": "fine-tune"}, files={"file": ("small.zip", small)}).json()["id"]
    assert settled_file(tight, f"/files/{file_id}")["status"] == "error"
    body = {"model": BASE, "training_file": file_id, "hyperparameters": {"steps": 10}}
    hp = "method.supervised.hyperparameters"
    error = assert_openai_error(
        tight.post(
            "/fine_tuning/jobs",
            json={
                "model": BASE,
                "training_file": file_id,
                "method": {"type": "supervised", "supervised": {"hyperparameters": {"steps": 51}}},
            },
        ),
        400,
        param=f"{hp}.steps",
    )
    assert "51" in error["message"] and "50" in error["message"]
    cases = [
        ({**body, "model": "ft:reelforge-tiny:tight:brand"}, "model"),
        ({**body, "model": "no-such-model"}, "model"),
        ({**body, "method": {"type": "dpo"}}, "method.type"),
        ({**body, "learning_rate": 1}, "learning_rate"),
        ({**body, "suffix": "Not Valid!"}, "suffix"),
        ({**body, "hyperparameters": {"n_epochs": 0}}, "hyperparameters.n_epochs"),
        ({**body, "hyperparameters": {"n_epochs": 2, "steps": 5}}, f"{hp}.steps"),
        (
            {**body, "method": {"type": "supervised", "supervised": {"hyperparameters": {"steps": 5}}}},
            "hyperparameters",
        ),
        ({"model": BASE}, "training_file"),
        ({**body, "integrations": [{"type": "wandb"}]}, "integrations"),
    ]
    for request, param in cases:
        assert_openai_error(
            tight.post("/fine_tuning/jobs", json=request),
            404 if request.get("model") == "no-such-model" else 400,
            param=param,
        )
    assert_openai_error(
        tight.post("/fine_tuning/jobs", content=b"{not json", headers={"content-type": "application/json"}), 400
    )
    assert_openai_error(tight.get("/fine_tuning/jobs?limit=0"), 400, param="limit")
    # One job at a time for `tight`: the first (failed at validation) does not count, an active one does.
    first = tight.post("/fine_tuning/jobs", json=body).json()
    assert first.get("status") == "failed", first
    assert "small.zip" in first["error"]["message"] and "/tmp" not in first["error"]["message"]  # no server paths
    assert tight.get("/fine_tuning/jobs").json()["data"][0]["id"] == first["id"]


def test_concurrent_job_limit_is_a_429(ft_platform, keys, footage_zip):
    tight = _raw(ft_platform, keys["tight"])
    file_id = tight.post(
        "/files", data={"purpose": "fine-tune"}, files={"file": ("f.zip", _tiny_zip(footage_zip))}
    ).json()["id"]
    body = {"model": BASE, "training_file": file_id, "hyperparameters": {"n_epochs": 1}}
    first = tight.post("/fine_tuning/jobs", json=body)
    assert first.status_code == 200, first.text
    error = assert_openai_error(tight.post("/fine_tuning/jobs", json=body), 429, "rate_limit_exceeded")
    assert "may run 1 at once" in error["message"]
    assert tight.post(f"/fine_tuning/jobs/{first.json()['id']}/cancel").json()["status"] == "cancelled"
    store = FineTuneStore(ft_platform.config.database_url)
    wait_for_condition(
        lambda: (
            store.get(None, first.json()["id"]).metered or store.get(None, first.json()["id"]).submission_id is None
        ),
        timeout=60,
    )


def _tiny_zip(data: bytes) -> bytes:
    """The first two clips of a footage zip: small enough for `tight`'s upload limit."""
    source = zipfile.ZipFile(io.BytesIO(data))
    names = sorted(source.namelist())[:4]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            archive.writestr(name, source.read(name))
    return buffer.getvalue()


def test_training_data_rights_are_recorded_per_file_and_required_by_policy(ft_platform, keys, tmp_path):
    from reelforge.platform.stores.files import FileStore

    folder = tmp_path / "rights"
    write_footage(folder, count=3, seed=9, brand=LOOK)
    careful = _raw(ft_platform, keys["careful"])
    undeclared = careful.post(
        "/files", data={"purpose": "fine-tune"}, files={"file": ("f.zip", zip_folder(folder))}
    ).json()
    settled_file(careful, f"/files/{undeclared['id']}")  # rights are known once the file is validated
    error = assert_openai_error(
        careful.post("/fine_tuning/jobs", json={"model": BASE, "training_file": undeclared["id"]}),
        400,
        param="training_file",
    )
    assert "3 without: clip_0000.mp4, clip_0001.mp4, clip_0002.mp4" in error["message"]

    # One file declared in the archive's metadata, the rest by the upload's fields.
    (folder / "metadata.jsonl").write_text(
        '{"file": "clip_0000.mp4", "text": "a red circle moving left on a white background", "license": "cc-by-4.0", "consent": "model release 17"}\n'
    )
    declared = careful.post(
        "/files",
        data={"purpose": "fine-tune", "license": "company-owned", "consent": "staff releases on file"},
        files={"file": ("f.zip", zip_folder(folder))},
    ).json()
    settled_file(careful, f"/files/{declared['id']}")
    report = FileStore(ft_platform.config.database_url).get("careful", declared["id"]).report
    rights = {v["file"]: (v["license"], v["consent"], v["uploader"]) for v in report["accepted"]}
    assert rights["clip_0000.mp4"][:2] == ("cc-by-4.0", "model release 17")
    assert rights["clip_0001.mp4"][:2] == ("company-owned", "staff releases on file")
    assert all(uploader.startswith("rf-careful-...") for *_, uploader in rights.values())
    job = careful.post(
        "/fine_tuning/jobs", json={"model": BASE, "training_file": declared["id"], "hyperparameters": {"steps": 1}}
    )
    assert job.status_code == 200, job.text
    assert careful.post(f"/fine_tuning/jobs/{job.json()['id']}/cancel").json()["status"] == "cancelled"


def test_a_killed_driver_is_resubmitted_and_resumes_from_its_checkpoint_in_the_same_run(ft_platform, footage_zip):
    """The driver process is killed once mid-run: the supervisor resubmits it, the same MLflow run
    continues from the step-100 checkpoint, and exactly one version is registered."""
    import os
    import signal

    import psutil

    key = ft_platform.tenants.create("survivor")[1]
    client = _client(ft_platform, key)
    uploaded = client.files.create(file=("footage.zip", footage_zip, "application/zip"), purpose="fine-tune")
    job = client.fine_tuning.jobs.create(model=BASE, training_file=uploaded.id, hyperparameters={"steps": 160}, seed=3)
    store = FineTuneStore(ft_platform.config.database_url)
    wait_for_condition(  # the step-100 checkpoint is on storage, the final one (160) not yet
        lambda: any(c.step == 100 for c in store.checkpoints("survivor", job.id, None, 10)[0]),
        timeout=600,
        retry_interval_ms=250,
    )
    # And Ray Train's own record of it is written: what a new driver restores from.
    snapshot = Path(ft_platform.settings.resolved_train_storage_url) / job.id / "checkpoint_manager_snapshot.json"
    wait_for_condition(
        lambda: snapshot.is_file() and "checkpoint-0000100" in snapshot.read_text(), timeout=60, retry_interval_ms=100
    )
    # The driver's own process (the Ray Job's entrypoint), killed as an OOM killer or a lost node would.
    drivers = [
        p
        for p in psutil.process_iter(["cmdline"])
        if "reelforge.platform.fine_tuning.driver" in " ".join(p.info["cmdline"] or [])
        and job.id in (p.info["cmdline"] or [])
    ]
    assert len(drivers) == 1, drivers
    os.kill(drivers[0].pid, signal.SIGKILL)

    done = _wait_for_status(client, job.id, {"succeeded", "failed", "cancelled"}, timeout=900)
    assert done.status == "succeeded", done.error
    messages = [e.message for e in client.fine_tuning.jobs.list_events(job.id, limit=100)]
    assert any(f"resubmitted as Ray Job {job.id}-r1" in m for m in messages), messages[:10]
    resumed = [m for m in messages if m.startswith("Resumed from step")]
    assert len(resumed) == 1 and resumed[0].startswith("Resumed from step 100"), resumed
    mlflow = tracking_client(ft_platform.settings)
    experiment = mlflow.get_experiment_by_name(experiment_name("survivor")).experiment_id
    runs = mlflow.search_runs([experiment])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"  # one run, continued by the second driver
    steps = [m.step for m in mlflow.get_metric_history(runs[0].info.run_id, "train/loss")]
    assert max(steps) == 160 and 100 in steps
    assert [m.step for m in mlflow.get_metric_history(runs[0].info.run_id, "train/resumed_from_step")] == [100]
    versions = list_versions(ft_platform.settings, registered_model_name("survivor", "brand", BASE))
    assert len(versions) == 1 and versions[0].run_id == runs[0].info.run_id
