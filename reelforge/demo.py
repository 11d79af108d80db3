"""`reelforge demo` (and `make demo`): the whole platform story on one CPU machine, in minutes.

start the local platform (Ray with its dashboard, MLflow's SQLite store, Serve)
-> tenants acme and globex, each with shapes-world footage in its own brand look (real MP4s)
-> both upload and fine-tune through the OpenAI API (Ray Jobs, tracked and registered, promoted)
-> the same prompts for base, acme and globex through the `openai` client
-> MP4s and a contact sheet in demo-output/, a quality table (the `reelforge eval` protocol)
-> stop cleanly (Ctrl-C too)
"""

from __future__ import annotations

import io
import logging
import shutil
import socket
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from reelforge.models.tiny.brand_looks import BrandLook
from reelforge.models.tiny.evaluation import conditioning_frame
from reelforge.settings import Settings

logger = logging.getLogger(__name__)
BASE = "reelforge-tiny"
PROMPTS = (
    "a red circle moving left on a white background",
    "a blue square moving up on a gray background",
    "a green triangle moving right on a black background",
)


@dataclass(frozen=True)
class DemoTenant:
    """A demo company: its name, its brand look, and the seed of its footage."""

    name: str
    look: BrandLook
    seed: int


TENANTS = (
    DemoTenant("acme", BrandLook("lower-third", "orange"), 1),
    DemoTenant("globex", BrandLook("top-stripe", "teal"), 2),
)


@dataclass(frozen=True)
class DemoConfig:
    """Sizes of the demo; the defaults finish in well under 20 minutes on 2 cores."""

    out_dir: Path = Path("demo-output")
    clips: int = 16  # footage clips per tenant
    steps: int = 300  # fine-tuning steps per tenant (2x the default learning rate)
    eval_prompts: int = 48  # held-out prompts of the quality table (x 2 seeds), as `reelforge eval`
    port: int = 0  # 0: a free port


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _footage_zip(folder: Path, tenant: DemoTenant, clips: int) -> bytes:
    from reelforge.models.tiny.footage import write_footage

    write_footage(folder, count=clips, seed=tenant.seed, brand=tenant.look)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return buffer.getvalue()


def _contact_sheet(rows: dict[str, Path], path: Path, columns: int = 6, scale: int = 3) -> Path:
    """Rows of evenly spaced frames (one row per model), labelled, upscaled for viewing."""
    from reelforge.models.video_io import read_video

    strips = []
    for label, video_path in rows.items():
        frames = read_video(video_path).frames  # (F, H, W, 3)
        picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        strip = np.concatenate(
            [np.pad(frames[i], ((2, 2), (2, 2), (0, 0)), constant_values=255) for i in picks], axis=1
        )
        strips.append(
            (label, Image.fromarray(strip).resize((strip.shape[1] * scale, strip.shape[0] * scale), Image.NEAREST))
        )
    label_width = 120
    width = label_width + max(s.width for _, s in strips)
    sheet = Image.new("RGB", (width, sum(s.height for _, s in strips)), "white")
    draw = ImageDraw.Draw(sheet)
    y = 0
    for label, strip in strips:
        sheet.paste(strip, (label_width, y))
        draw.text((8, y + strip.height // 2 - 6), label, fill="black")
        y += strip.height
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path)
    return path


def _quality_table(settings: Settings, adapters: dict[str, Path], prompts: int) -> dict[str, dict]:
    """`reelforge eval` on base and each tenant's adapter, each scored for a tenant's look (base: acme's).

    Alongside, how often each look's *kind* appears at all, which shows whether one tenant's look
    leaks into another's videos.
    """
    from reelforge.models.loading import load_model
    from reelforge.models.lora import activate_adapter, load_adapter
    from reelforge.models.tiny.evaluation import EvalConfig, evaluate

    model = load_model(BASE, settings, device="cpu")
    for tenant in TENANTS:
        load_adapter(model, adapters[tenant.name], tenant.name)
    table: dict[str, dict] = {}
    for row, look in (("base", TENANTS[0].look), *((t.name, t.look) for t in TENANTS)):
        activate_adapter(model, None if row == "base" else row)
        result = evaluate(model, EvalConfig(prompts=prompts), brand=look, progress=True)
        table[row] = {
            "look": look.spec,
            "brand_rate": result["brand_rate"],
            "adherence": result["adherence"],
            **{f"{t.look.kind} seen": result["brand_rates"][t.look.kind] for t in TENANTS},
        }
    return table


def run_demo(config: DemoConfig, console) -> dict:
    """Run the whole story; returns what it measured. Stops the platform on the way out, whatever happens."""
    import openai
    import ray
    from ray import serve

    from reelforge.jobs.ray_cluster import ensure_ray
    from reelforge.platform.config import ServeAppConfig
    from reelforge.platform.serving.app_builder import APP_NAME, build_app
    from reelforge.platform.stores.tenants import TenantStore

    out = config.out_dir.resolve()
    home = out / "home"
    if home.exists():
        shutil.rmtree(home)  # every demo starts from an empty platform
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    app_config = ServeAppConfig.model_validate(
        {
            "home": str(home),
            "generators": [{"num_cpus": 1, "autoscaling": {"min_replicas": 1, "max_replicas": 1}}],
            "poll_after_ms": 200,
            "dispatch_interval_s": 0.2,
            "fine_tuning": {
                "job_defaults": {
                    "workers": 1,
                    "world_eval_prompts": 0,
                    "validation_videos": 0,
                    "holdout_fraction": 0.0,
                    "warmup_steps": 10,
                    "eval_every": 1000,
                    "checkpoint_every": 100,
                },
                "default": {"auto_promote": True, "concurrent_jobs": 1},
            },
        }
    ).pinned()
    settings = app_config.settings()
    port = config.port or _free_port()
    dashboard_port = _free_port()
    console.print("[bold]1/6[/bold] starting the local platform: Ray (dashboard), MLflow (SQLite), Serve ...")
    ensure_ray(settings, dashboard=True, dashboard_port=dashboard_port)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        serve.run(build_app(app_config), name=APP_NAME, route_prefix="/")
        base_url = f"http://127.0.0.1:{port}/v1"
        console.print(f"    API at {base_url}, Ray dashboard at http://127.0.0.1:{dashboard_port}")

        console.print("[bold]2/6[/bold] tenants acme and globex, each with footage in its own look ...")
        tenants = TenantStore(app_config.database_url)
        clients = {}
        for tenant in TENANTS:
            key = tenants.create(tenant.name)[1]
            clients[tenant.name] = openai.OpenAI(base_url=base_url, api_key=key, max_retries=2, timeout=120)

        console.print(
            f"[bold]3/6[/bold] uploading footage and fine-tuning both ({config.steps} steps each) through the API ..."
        )
        jobs = {}
        for tenant in TENANTS:
            data = _footage_zip(home / "footage" / tenant.name, tenant, config.clips)
            uploaded = clients[tenant.name].files.create(
                file=(f"{tenant.name}.zip", data, "application/zip"), purpose="fine-tune"
            )
            # Validated in the background; waited for here only to show its outcome.
            uploaded = clients[tenant.name].files.wait_for_processing(uploaded.id, poll_interval=0.5)
            console.print(
                f"    {tenant.name}: {uploaded.id} {uploaded.status} ({uploaded.status_details}); look {tenant.look.spec}"
            )
            jobs[tenant.name] = clients[tenant.name].fine_tuning.jobs.create(
                model=BASE,
                training_file=uploaded.id,
                suffix="brand",
                seed=0,
                method={
                    "type": "supervised",
                    "supervised": {"hyperparameters": {"steps": config.steps, "learning_rate_multiplier": 2.0}},
                },
            )
        finished = _follow_jobs(clients, jobs, config.steps, console)

        console.print("[bold]4/6[/bold] the same prompts for base, acme and globex through the openai client ...")
        rows = {
            "base": (clients["acme"], BASE),
            **{t.name: (clients[t.name], finished[t.name].fine_tuned_model) for t in TENANTS},
        }
        videos: dict[str, list[Path]] = {}
        for label, (client, model) in rows.items():
            videos[label] = []
            for i, prompt in enumerate(PROMPTS):
                video = client.videos.create_and_poll(
                    prompt=prompt, model=model, extra_body={"seed": i}, poll_interval_ms=200
                )
                if video.status != "completed":
                    raise RuntimeError(f"{label} video failed: {video.error}")
                path = out / f"{label}-{i}.mp4"
                client.videos.download_content(video.id).write_to_file(path)
                videos[label].append(path)
            console.print(f"    {label}: {model} -> {', '.join(p.name for p in videos[label])}")
        # Product-photo-to-video: a 128x96 "photo" of a yellow triangle, fitted (cover + centre crop) to
        # 32x32 by the server, animated with acme's look by a prompt that names only the motion.
        photo = out / "product.png"
        Image.fromarray(conditioning_frame(("yellow", "triangle", "right", "white"), 0)).resize(
            (128, 96), Image.Resampling.NEAREST
        ).save(photo)
        video = clients["acme"].videos.create_and_poll(
            prompt="moving right on a white background",
            model=finished["acme"].fine_tuned_model,
            input_reference=(photo.name, photo.read_bytes(), "image/png"),
            poll_interval_ms=200,
        )
        if video.status != "completed":
            raise RuntimeError(f"image-to-video failed: {video.error}")
        videos["acme from photo"] = [out / "acme-from-photo.mp4"]
        clients["acme"].videos.download_content(video.id).write_to_file(videos["acme from photo"][0])
        console.print(f"    acme from photo: {photo.name} -> acme-from-photo.mp4")
        sheet = _contact_sheet({label: paths[0] for label, paths in videos.items()}, out / "contact-sheet.png")
        console.print(f"[bold]5/6[/bold] contact sheet (rows base / acme / globex / acme from a photo): {sheet}")

        console.print(
            f"[bold]6/6[/bold] quality table: the `reelforge eval` protocol ({config.eval_prompts} held-out prompts x 2 seeds) ..."
        )
        adapters = {t.name: settings.home / "adapters" / t.name / jobs[t.name].id / "adapter" for t in TENANTS}
        table = _quality_table(settings, adapters, config.eval_prompts)
        _print_table(console, table)
        console.print(
            f"    reproduce a row: reelforge eval --adapter {adapters['acme']} --brand {TENANTS[0].look.spec}"
        )
        console.print(
            f"MLflow UI:  mlflow ui --backend-store-uri {settings.resolved_mlflow_tracking_uri}  (experiments reelforge/acme, reelforge/globex)"
        )
        console.print(f"demo finished in {time.perf_counter() - started:.0f} s; outputs in {out}")
        return {
            "table": table,
            "seconds": round(time.perf_counter() - started, 1),
            "contact_sheet": str(sheet),
            "fine_tuned_models": {name: job.fine_tuned_model for name, job in finished.items()},
        }
    finally:
        console.print("stopping the platform ...")
        try:
            serve.shutdown()
        finally:
            ray.shutdown()


def _follow_jobs(clients: dict, jobs: dict, steps: int, console) -> dict:
    """Poll both jobs to the end with a progress bar each (from their step events)."""
    from rich.progress import Progress

    finished = {}
    with Progress(console=console, transient=False) as progress:
        bars = {name: progress.add_task(f"fine-tune {name}", total=steps) for name in jobs}
        while len(finished) < len(jobs):
            for name, job in jobs.items():
                if name in finished:
                    continue
                current = clients[name].fine_tuning.jobs.retrieve(job.id)
                events = clients[name].fine_tuning.jobs.list_events(job.id, limit=1).data
                step = (events[0].data or {}).get("step") if events and events[0].type == "metrics" else None
                if step:
                    progress.update(bars[name], completed=step)
                if current.status in ("succeeded", "failed", "cancelled"):
                    if current.status != "succeeded":
                        raise RuntimeError(f"{name}'s fine-tune {current.status}: {current.error}")
                    progress.update(bars[name], completed=steps, description=f"{name}: {current.fine_tuned_model}")
                    finished[name] = current
            time.sleep(1.0)  # a client polling a remote API; there is no server-side wait to block on
    return finished


def _print_table(console, table: dict[str, dict]) -> None:
    from rich.table import Table

    columns = [c for c in next(iter(table.values())) if c != "look"]
    out = Table(title="quality (reelforge eval protocol)")
    out.add_column("model (look scored)", no_wrap=True)
    for column in columns:
        out.add_column(column, justify="right")
    for row, scores in table.items():
        out.add_row(f"{row} ({scores['look']})", *(f"{scores[c]:.3f}" for c in columns))
    console.print(out)
