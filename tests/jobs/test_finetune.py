"""Fine-tunes on a real local Ray cluster (Ray Train + DeepSpeed ZeRO on CPU/gloo) tracked in real MLflow.

Small runs of the shipped reelforge-tiny on six branded shapes-world clips: they check the
plumbing (tracking, artifacts, registry, ZeRO-3 gathering, sweeps, early errors), not quality;
the quality run is in the README and bench/.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest
import torch
from safetensors.torch import load_file

from reelforge.jobs.finetune import run_finetune
from reelforge.jobs.finetune_config import build_config
from reelforge.jobs.run_tracking import experiment_name, tracking_client
from reelforge.models.loading import load_model
from reelforge.models.lora import ADAPTER_CARD_FILE, LORA_WEIGHTS_FILE, activate_adapter, load_adapter
from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.footage import write_footage
from reelforge.settings import Settings
from tests.harness import run_cli

pytestmark = pytest.mark.slow

SMALL = [
    "steps=4",
    "checkpoint_every=2",
    "eval_every=2",
    "batch_per_worker=2",
    "world_eval_prompts=2",
    "world_eval_seeds=1",
    "validation_videos=1",
    "holdout_fraction=0.2",
    "warmup_steps=1",
]


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("finetune-home")


@pytest.fixture(scope="module")
def footage(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("footage") / "acme"
    write_footage(root, count=6, seed=11, brand=BrandLook("lower-third", "orange"))
    return root


@pytest.fixture(scope="module")
def zero2_run(ray_cluster, home: Path, footage: Path):
    settings = Settings(home=home)
    config = build_config({"tenant": "acme", "data": str(footage)}, SMALL)
    return settings, run_finetune(config, settings)


def test_run_is_tracked_with_params_tags_metrics_and_artifacts(zero2_run, tmp_path: Path):
    settings, result = zero2_run
    client = tracking_client(settings)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert client.get_experiment(run.info.experiment_id).name == experiment_name("acme") == "reelforge/acme"
    assert run.data.params["lora.rank"] == "16" and run.data.params["deepspeed.zero_stage"] == "2"
    assert run.data.params["resolved.total_steps"] == "4" and run.data.params["resolved.precision"] == "fp32"
    tags = run.data.tags
    assert tags["reelforge.tenant"] == "acme" and tags["reelforge.base_model"] == "reelforge-tiny"
    assert tags["reelforge.job_id"] == result.job_id and len(tags["reelforge.dataset_hash"]) == 16
    assert tags["reelforge.brand"] == "lower-third:orange"  # detected from the training clips
    assert tags["reelforge.look_metric"] == "eval/brand_rate"
    steps = {
        key: [m.step for m in client.get_metric_history(result.run_id, key)]
        for key in (
            "train/loss",
            "train/lr",
            "train/grad_norm",
            "train/samples_per_s",
            "eval/loss",
            "eval/brand_rate",
            "eval/adherence",
        )
    }
    assert sorted(steps["train/loss"]) == [1, 2, 3, 4] and sorted(steps["train/grad_norm"]) == [1, 2, 3, 4]
    assert sorted(steps["eval/loss"]) == [0, 2, 4] and sorted(steps["eval/brand_rate"]) == [0, 2, 4]
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == [f"acme-footage-{tags['reelforge.dataset_hash']}"]

    validation = [a.path for a in client.list_artifacts(result.run_id, "validation/step-000004")]
    assert any(p.endswith(".gif") for p in validation)
    mp4 = next(p for p in validation if p.endswith(".mp4"))
    local = client.download_artifacts(result.run_id, mp4, str(tmp_path))
    with av.open(local) as container:
        frames = [f for f in container.decode(video=0)]
    assert len(frames) == 17 and (frames[0].width, frames[0].height) == (32, 32)
    adapter_files = {a.path for a in client.list_artifacts(result.run_id, "adapter")}
    assert f"adapter/{LORA_WEIGHTS_FILE}" in adapter_files
    assert [a.path for a in client.list_artifacts(result.run_id, "adapter-comfyui")] == [
        "adapter-comfyui/comfyui_lora.safetensors"
    ]


def test_registered_version_carries_tags_and_candidate_alias(zero2_run):
    settings, result = zero2_run
    client = tracking_client(settings)
    version = client.get_model_version(result.registered_model, str(result.version))
    assert (
        result.registered_model == "acme.brand.reelforge-tiny"
        and result.fine_tuned_model == "ft:reelforge-tiny:acme:brand"
    )
    assert version.aliases == ["candidate"] and version.run_id == result.run_id
    for key in (
        "reelforge.tenant",
        "reelforge.base_model",
        "reelforge.dataset_hash",
        "reelforge.job_id",
        "reelforge.adapter_sha256",
        "reelforge.eval_loss",
        "reelforge.fine_tuned_model",
    ):
        assert version.tags[key], key
    assert version.tags["reelforge.tenant"] == "acme"


def test_adapter_is_trained_and_loads_into_the_base_model(zero2_run):
    _, result = zero2_run
    tensors = load_file(str(result.adapter_dir / LORA_WEIGHTS_FILE))
    assert max(t.abs().max().item() for k, t in tensors.items() if "lora_B" in k) > 0  # B starts at zero
    model = load_model("reelforge-tiny", device="cpu")
    load_adapter(model, result.adapter_dir, "acme")
    x = torch.randn(1, *model.spec.latent_shape(model.pipeline, 17, 32, 32), generator=torch.Generator().manual_seed(0))
    text = model.encode_text(["a red circle moving left on a white background"])
    outputs = []
    for name in (None, "acme"):
        activate_adapter(model, name)
        with torch.no_grad():
            outputs.append(model.spec.predict(model.transformer, x, torch.tensor([500.0]), text))
    assert (outputs[0] - outputs[1]).abs().max() > 1e-4


def test_sweep_runs_the_grid_and_compare_lists_every_run(zero2_run, monkeypatch, capsys, tmp_path: Path):
    """A sweep over the ZeRO stage: both runs tracked and compared, and the ZeRO-3 one (whose
    parameters are partitioned across the workers) still saves a whole, non-zero adapter."""
    settings, first = zero2_run
    monkeypatch.setenv("REELFORGE_HOME", str(settings.home))
    source = tracking_client(settings).get_run(first.run_id).data.params["data"]
    args = [
        "finetune",
        "--tenant",
        "acme",
        "--data",
        source,
        "--json",
        *sum((["--set", s] for s in SMALL), []),
        "--set",
        "steps=2",
        "--set",
        "world_eval_prompts=0",
        "--set",
        "validation_videos=0",
        "--set",
        "suffix=sweep",
        "--sweep",
        "deepspeed.zero_stage=2,3",
    ]
    code, out, err = run_cli(args, monkeypatch, capsys)
    assert code == 0, err
    runs = json.loads(out)
    assert len(runs) == 2 and runs[0]["sweep_id"] == runs[1]["sweep_id"]
    png = tmp_path / "curves.png"
    code, out, err = run_cli(
        ["compare", "--tenant", "acme", "--sweep", runs[0]["sweep_id"], "--png", str(png), "--json"],
        monkeypatch,
        capsys,
    )
    assert code == 0, err
    rows = json.loads(out)[:-1]
    assert {r["run_id"] for r in rows} == {r["run_id"] for r in runs}
    assert sorted(r["params"]["deepspeed.zero_stage"] for r in rows) == ["2", "3"]
    assert all(r["status"] == "FINISHED" and r["eval_loss"] is not None for r in rows)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    client = tracking_client(settings)
    every_run = client.search_runs([client.get_experiment_by_name("reelforge/acme").experiment_id])
    code, out, _ = run_cli(["compare", "--tenant", "acme", "--png", str(png)], monkeypatch, capsys)
    assert code == 0 and out.count("FINISHED") == len(every_run) >= 3  # the table lists every run of the tenant
    code, listed, _ = run_cli(["compare", "--tenant", "acme", "--png", str(png), "--json"], monkeypatch, capsys)
    # The swept key is among the params that differ (checked in JSON: the table wraps long keys).
    assert code == 0 and all("deepspeed.zero_stage" in row["params"] for row in json.loads(listed)[:-1])
    (zero3,) = [
        r for r in runs if tracking_client(settings).get_run(r["run_id"]).data.params["deepspeed.zero_stage"] == "3"
    ]
    tensors = load_file(str(Path(zero3["adapter_dir"]) / LORA_WEIGHTS_FILE))
    lora_b = [t for k, t in tensors.items() if "lora_B" in k]
    assert lora_b and all(t.numel() > 0 for t in lora_b)  # gathered: full shapes, not empty ZeRO-3 partitions
    assert max(t.abs().max().item() for t in lora_b) > 0
    # The card's base fingerprint was taken before ZeRO-3 partitioned the base, so the served base matches it.
    served = load_model("reelforge-tiny", device="cpu")
    card = json.loads((Path(zero3["adapter_dir"]) / ADAPTER_CARD_FILE).read_text())
    assert card["base_fingerprint"] == served.fingerprint
    load_adapter(served, zero3["adapter_dir"], "zero3")
    # Each CLI run is metered as training usage, as API jobs are.
    from reelforge.platform.stores.usage import TRAINING, UsageMeter

    usage = [r for r in UsageMeter(settings.resolved_database_url).summary("acme") if r.kind == TRAINING]
    assert sum(r.jobs for r in usage) == 2 and all(r.seconds > 0 and r.device == "cpu" for r in usage)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "lora.rnk=4"], "unknown key 'lora.rnk'"),
        (["--set", "lora.rank=0"], "lora.rank: Input should be greater than or equal to 1"),
        (["--data", "/nonexistent/footage"], "data /nonexistent/footage does not exist"),
        (["--tenant", "globex"], "was not ingested for tenant 'globex'"),
    ],
)
def test_bad_configs_fail_before_any_worker_starts(zero2_run, monkeypatch, capsys, tmp_path: Path, extra, message):
    settings, first = zero2_run
    home = tmp_path / "fresh-home"
    monkeypatch.setenv("REELFORGE_HOME", str(home))
    ingested = next((settings.home / "datasets" / "acme").iterdir())  # acme's ingested latents
    args = ["finetune", "--tenant", "acme", "--data", str(ingested)]
    for i in range(0, len(extra), 2):  # later flags win in typer: replace instead of repeating
        if extra[i] in args:
            args[args.index(extra[i]) + 1] = extra[i + 1]
        else:
            args += extra[i : i + 2]
    code, _, err = run_cli(args, monkeypatch, capsys)
    assert code == 2 and message in " ".join(err.split()), err
    assert not (home / "ray-results").exists() and not (home / "finetune").exists()  # no trainer, no workers
