"""True-size proof without a GPU: Wan 2.1 1.3B and Wan 2.2 TI2V-5B at their real width and depth.

    python -m bench.true_size                      # every stage, about 30 minutes on 2 cores
    python -m bench.true_size --stages finetune_zero3_2w,serve

The weights are random (`bench.wan_architectures`): memory and plumbing do not depend on their
values. Each stage runs in its own process, and its peak memory is the peak, over the stage, of
the summed PSS of that process and all its descendants (Ray's raylet, train workers and replicas
included; PSS splits shared pages, so nothing is counted twice). Stages:

* build: both pipelines built in bf16 and saved in diffusers format, each with a reelforge.json
  whose defaults are a small size (64x64x9 for the 1.3B, 128x128x9 for the TI2V-5B; 2 steps).
  The transformers and VAEs are true size. UMT5-XXL keeps its width (4096) and vocabulary path,
  but only 2 of its 24 layers, so that two training workers and the driver fit in 24 GB.
* generate_1_3b: `reelforge generate -m wan2.1-t2v-1.3b --model-path DIR` (fp32 on the CPU, as the
  CLI loads it);
* generate_ti2v_5b: image-to-video through `load_model(..., model_path=DIR)` in bf16, since 5B
  parameters in fp32 (20 GB) do not fit beside the rest on this machine;
* finetune_zero2_1w, finetune_zero3_2w: `reelforge finetune` on 4 clips, 3 steps, rank 16: ingest
  (VAE and text encoder), Ray Train with DeepSpeed, the adapter gathered and saved, registered.
  One worker trains in fp32; the two ZeRO-3 workers in bf16, since two fp32 workers of the 1.3B
  do not fit in 24 GB beside the driver;
* serve: Ray Serve with a 1.3B generator, the latest registered adapter (the `candidate`)
  promoted, one request through the openai client, the MP4 downloaded.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from bench.report import save_result

STAGES = (
    "build",
    "generate_1_3b",
    "generate_ti2v_5b",
    "finetune_zero2_1w",
    "finetune_zero3_2w",
    "serve",
)
TEXT_LAYERS = 2
MODELS = {"1.3b": "wan2.1-t2v-1.3b", "ti2v": "wan2.2-ti2v-5b"}
SMALL_DEFAULTS = {
    "1.3b": dict(height=64, width=64, buckets=[[64, 64]]),
    "ti2v": dict(height=128, width=128, buckets=[[128, 128]]),
}
TENANT = "acme"


class PeakMemory:
    """Samples the summed PSS of a process tree every `interval` seconds; `peak_gb` once stopped."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        self.root = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree_pss(self) -> int:
        total = 0
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        for process in processes:
            try:
                total += process.memory_full_info().pss  # psutil reads /proc/PID/smaps_rollup
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._tree_pss())
            self._stop.wait(self.interval)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return round(self.peak / 1e9, 2)


def chosen_stages(parser: argparse.ArgumentParser, text: str, known: tuple[str, ...]) -> list[str]:
    """The comma-separated `--stages`, in order; an unknown one is a usage error naming the known."""
    stages = [s for s in text.split(",") if s]
    unknown = sorted(set(stages) - set(known))
    if unknown:
        parser.error(f"unknown stages {unknown}; known: {', '.join(known)}")
    return stages


def stage_env(work: Path) -> dict[str, str]:
    """The environment every stage runs in: its own REELFORGE_HOME under `work`, unbuffered output."""
    return {
        **os.environ,
        "REELFORGE_HOME": str(work / "home"),
        "PYTHONUNBUFFERED": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def run_stage(argv: list[str], env: dict[str, str], log: Path, timeout: float = 1800) -> dict:
    """Run one stage's command, sampling its tree's memory; its stdout (or last line of it) is its JSON result."""
    started = time.perf_counter()
    with log.open("w") as err:
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, text=True, env=env)
        memory = PeakMemory(process.pid)
        try:
            out, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:  # the whole tree: a fine-tune's Ray processes would outlive it
            for child in psutil.Process(process.pid).children(recursive=True):
                child.kill()
            process.kill()
            out, _ = process.communicate()
        peak = memory.stop()
    result: dict = {"seconds": round(time.perf_counter() - started, 1), "peak_pss_gb": peak}
    if process.returncode != 0:
        tail = log.read_text()[-1500:]
        return {**result, "error": f"exit {process.returncode}", "log_tail": tail}
    lines = [line for line in out.strip().splitlines() if line.strip()]
    parsed = None
    for text in (out, lines[-1] if lines else ""):  # the whole stdout (`--json`), else its last line
        try:
            parsed = json.loads(text)
            break
        except ValueError:
            continue
    if isinstance(parsed, list):
        result["runs"] = parsed
    elif isinstance(parsed, dict):
        result |= parsed
    else:
        result["stdout_tail"] = out[-300:]
    return result


# --- stages that run in this module's own child process (`--in-process STAGE`) ---------------------------


def build_models(work: Path) -> dict:
    """Both pipelines in bf16 with random weights, saved in diffusers format with small-size defaults."""
    import torch

    from bench.wan_architectures import build_wan_1_3b_random, build_wan_ti2v_5b_random

    builders = {"1.3b": build_wan_1_3b_random, "ti2v": build_wan_ti2v_5b_random}
    result = {}
    previous = torch.get_default_dtype()
    for kind, build in builders.items():
        out = work / MODELS[kind]
        torch.set_default_dtype(torch.bfloat16)  # built in bf16 directly: 5B in fp32 would need 20 GB first
        try:
            pipeline = build(torch.device("cpu"), torch.bfloat16, text_layers=TEXT_LAYERS)
        finally:
            torch.set_default_dtype(previous)
        pipeline.save_pretrained(out, safe_serialization=True)
        count = {
            name: round(sum(p.numel() for p in getattr(pipeline, name).parameters()) / 1e9, 3)
            for name in ("transformer", "vae", "text_encoder")
        }
        defaults = dict(
            num_frames=9, fps=16.0, steps=2, guidance=5.0, max_text_tokens=512,
            max_height=256, max_width=256, max_frames=17, frame_buckets=[9], **SMALL_DEFAULTS[kind],
        )  # fmt: skip
        (out / "reelforge.json").write_text(json.dumps({"name": MODELS[kind], "defaults": defaults}, indent=2))
        size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
        result[kind] = {"params_b": count, "saved_gb": round(size / 1e9, 2)}
        del pipeline
    return result


def generate_ti2v(work: Path) -> dict:
    """Image-to-video with the TI2V-5B loaded through the preset path, in bf16."""
    import torch

    from reelforge.models.loading import load_model
    from reelforge.models.sampling import GenerationSettings, generate
    from reelforge.models.tiny.evaluation import conditioning_frame
    from reelforge.models.video_io import write_mp4

    started = time.perf_counter()
    model = load_model(MODELS["ti2v"], model_path=work / MODELS["ti2v"], device="cpu", dtype=torch.bfloat16)
    loaded = time.perf_counter()
    photo = np.kron(conditioning_frame(("yellow", "triangle", "right", "white"), 0), np.ones((4, 4, 1), np.uint8))
    stamps: list[float] = []
    video = generate(
        model,
        GenerationSettings("a yellow triangle moving right", image=photo),  # (128, 128, 3) photo
        progress=lambda done, total: stamps.append(time.perf_counter()),
    )
    write_mp4(video, work / "ti2v.mp4")
    return {
        "load_s": round(loaded - started, 1),
        "s_per_step": round(stamps[-1] - stamps[-2], 2) if len(stamps) > 1 else None,
        "generate_s": round(time.perf_counter() - loaded, 1),
        "frames": int(video.frames.shape[0]),
        "size": f"{video.frames.shape[2]}x{video.frames.shape[1]}",
    }


def serve_one_request(work: Path, adapter_name: str) -> dict:
    """Ray Serve with a 1.3B generator; the registered adapter promoted; one video through the openai client."""
    import socket

    import openai
    import ray
    from ray import serve

    from reelforge.jobs.adapter_registry import promote
    from reelforge.jobs.ray_cluster import ensure_ray
    from reelforge.platform.config import ServeAppConfig
    from reelforge.platform.serving.app_builder import APP_NAME, build_app
    from reelforge.platform.stores.tenants import TenantStore

    app_config = ServeAppConfig.model_validate(
        {
            "home": os.environ["REELFORGE_HOME"],
            "generators": [
                {
                    "model": MODELS["1.3b"],
                    "model_path": str(work / MODELS["1.3b"]),
                    "num_cpus": 1,
                    "autoscaling": {"min_replicas": 1, "max_replicas": 1},
                }
            ],
            "poll_after_ms": 200,
            "dispatch_interval_s": 0.2,
        }
    ).pinned()
    settings = app_config.settings()
    version = promote(settings, adapter_name)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ensure_ray(settings)
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        started = time.perf_counter()
        serve.run(build_app(app_config), name=APP_NAME, route_prefix="/")
        ready = time.perf_counter()
        key = TenantStore(app_config.database_url).create(TENANT)[1]
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=2, timeout=600)
        model = f"ft:{MODELS['1.3b']}:{TENANT}:brand"
        video = client.videos.create_and_poll(prompt="a red circle moving left", model=model, poll_interval_ms=500)
        if video.status != "completed":
            raise RuntimeError(f"the served video failed: {video.error}")
        path = work / "served.mp4"
        client.videos.download_content(video.id).write_to_file(path)
        return {
            "app_ready_s": round(ready - started, 1),
            "request_s": round(time.perf_counter() - ready, 1),
            "adapter_version": version.version,
            "mp4_bytes": path.stat().st_size,
        }
    finally:
        serve.shutdown()
        ray.shutdown()


# --- the driver ----------------------------------------------------------------------------------------


def write_footage(folder: Path, clips: int = 4) -> Path:
    """`clips` shapes-world clips at 128x128 (nearest-upscaled), each with its caption beside it."""
    from reelforge.models.tiny.pretrain import training_combos
    from reelforge.models.tiny.shapes_world import render_clip, sample_clip_spec
    from reelforge.models.video_io import Video, write_mp4

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    combos = training_combos()
    for index in range(clips):
        spec = sample_clip_spec(rng, combos[rng.integers(len(combos))])
        video = render_clip(spec)[0]
        frames = np.kron(video.frames, np.ones((1, 4, 4, 1), np.uint8))  # (F, 128, 128, 3)
        write_mp4(Video(frames, video.fps), folder / f"clip_{index}.mp4")
        (folder / f"clip_{index}.txt").write_text(spec.caption)
    return folder


def finetune_argv(
    work: Path,
    footage: Path,
    workers: int,
    zero_stage: int,
    precision: str,
    model: str = MODELS["1.3b"],
    steps: int = 3,
) -> list[str]:
    """`reelforge finetune` of `model` (saved under `work`) for `steps` steps with `workers` workers at ZeRO `zero_stage`."""
    sets = {
        "precision": precision,
        "steps": steps, "workers": workers, "deepspeed.zero_stage": zero_stage, "batch_per_worker": 1,
        "lora.rank": 16, "warmup_steps": 0, "holdout_fraction": 0.0, "validation_videos": 1,
        "world_eval_prompts": 0, "eval_every": 1000, "checkpoint_every": 1000,
    }  # fmt: skip
    argv = [sys.executable, "-m", "reelforge", "finetune", "--tenant", TENANT, "--data", str(footage)]
    argv += ["-m", model, "--model-path", str(work / model), "--json"]
    return argv + [arg for key, value in sets.items() for arg in ("--set", f"{key}={value}")]


def summarize_finetune(result: dict) -> dict:
    """The run's adapter size and registration out of `reelforge finetune --json`'s output."""
    runs = result.pop("runs", None)
    if not runs:
        return result
    run = runs[0]
    adapter = Path(run["adapter_dir"]) / "pytorch_lora_weights.safetensors"
    return {
        **result,
        "registered": f"{run['registered_model']}/{run['version']}",
        "adapter_mib": round(adapter.stat().st_size / 2**20, 2) if adapter.exists() else None,
        "run_seconds": run["seconds"],
    }


def main(argv: list[str] | None = None) -> dict:
    """Run the chosen stages in order and save bench-output/true_size.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work-dir", type=Path, default=Path("runs/true-size"))
    parser.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated, of {', '.join(STAGES)}")
    parser.add_argument("--out", type=Path, default=Path("bench-output/true_size.json"))
    parser.add_argument("--in-process", choices=("build", "generate_ti2v_5b", "serve"), help=argparse.SUPPRESS)
    parser.add_argument("--adapter-name", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    work = args.work_dir.resolve()
    if args.in_process:  # a stage's own child process: print its JSON result last
        run = {
            "build": lambda: build_models(work),
            "generate_ti2v_5b": lambda: generate_ti2v(work),
            "serve": lambda: serve_one_request(work, args.adapter_name),
        }[args.in_process]
        print(json.dumps(run()))
        return {}
    stages = chosen_stages(parser, args.stages, STAGES)
    work.mkdir(parents=True, exist_ok=True)
    env = stage_env(work)
    results = json.loads(args.out.read_text()) if args.out.is_file() else {}
    footage = write_footage(work / "footage")
    me = [sys.executable, "-m", "bench.true_size", "--work-dir", str(work)]
    for stage in stages:
        print(f"[true_size] {stage} ...", flush=True)
        log = work / f"{stage}.log"
        if stage == "build":
            result = run_stage([*me, "--in-process", "build"], env, log)
        elif stage == "generate_1_3b":
            cli = [
                sys.executable,
                "-m",
                "reelforge",
                "generate",
                "a red circle moving left",
                "-o",
                str(work / "t2v.mp4"),
            ]
            cli += ["-m", MODELS["1.3b"], "--model-path", str(work / MODELS["1.3b"]), "--device", "cpu"]
            result = run_stage(cli, env, log)
        elif stage == "generate_ti2v_5b":
            result = run_stage([*me, "--in-process", "generate_ti2v_5b"], env, log)
        elif stage.startswith("finetune"):
            # Two fp32 workers of the 1.3B (10 GB each: base, text encoder, ZeRO-3 partitions) pass 24 GB
            # with the driver, and Ray's memory monitor kills one; in bf16 the base loads at half that.
            workers, zero, precision = (1, 2, "fp32") if stage == "finetune_zero2_1w" else (2, 3, "bf16")
            result = run_stage(finetune_argv(work, footage, workers, zero, precision), env, log)
            result["precision"] = precision
            result = summarize_finetune(result)
        else:  # serve: the adapter name the fine-tunes registered under; its candidate is promoted
            name = results.get("finetune_zero2_1w", {}).get("registered", "").split("/")[0]
            if not name:
                result = {"error": "run finetune_zero2_1w first: serve uses its adapter"}
            else:
                result = run_stage([*me, "--in-process", "serve", "--adapter-name", name], env, log)
        results[stage] = result
        print(f"[true_size] {stage}: {result}", flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return save_result(results, args.out)


if __name__ == "__main__":
    main()
