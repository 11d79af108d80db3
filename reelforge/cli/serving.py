"""Platform commands: `serve` in the foreground, `up`/`down` in the background, `verify` a video, the `demo`."""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path
from typing import Annotated

import typer

from reelforge.cli.console import ConfigOption, stderr, stdout

app = typer.Typer()


def _serve_target(config: Path | None, host: str | None, port: int | None):
    """The app config and where it listens: flags, else the file's `http_options`, else 127.0.0.1:8000."""
    from reelforge.platform.config import ServeAppConfig, read_serve_file

    app_config, http_options = read_serve_file(config) if config else (ServeAppConfig(), {})
    return app_config, host or http_options.get("host", "127.0.0.1"), port or int(http_options.get("port", 8000))


@app.command("serve")
def serve_command(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="HTTP bind address (default: the config's, else 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default: the config's, else 8000).")] = None,
) -> None:
    """Start Ray Serve with the OpenAI-compatible Videos API and the generators; Ctrl-C stops it."""
    from ray import serve

    from reelforge.jobs.ray_cluster import ensure_ray
    from reelforge.platform.serving.app_builder import APP_NAME, build_app

    app_config, host, port = _serve_target(config, host, port)
    ensure_ray(app_config.settings(), dashboard=True)
    # After ray.init, which installs its own crash handler for SIGTERM: SIGTERM stops the server
    # like Ctrl-C, and SIGINT is restored in case a launcher left it ignored.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    serve.start(http_options={"host": host, "port": port})
    try:
        stderr.print(f"starting {len(app_config.generators)} generator deployment(s) and the API ...")
        serve.run(build_app(app_config), name=APP_NAME, route_prefix="/")
        stderr.print(f"reelforge is serving the OpenAI Videos API at http://{host}:{port}/v1 (Ctrl-C stops)")
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        # No graceful drain here: accepted jobs are in the job store and resume at the next start.
        stderr.print("stopping; queued and running videos resume when the server starts again")
    finally:
        import ray

        ray.shutdown()


@app.command("verify")
def verify_command(
    file: Annotated[Path, typer.Argument(help="An MP4 to check (as served, or re-encoded, resized, cropped).")],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Check a video's four marks (visible label, AIGC metadata, C2PA manifest, invisible watermark)
    and name the request that made it.

    Exit 0: verified (or identified by its watermark after a re-encode); 3: tampered, untrusted or unmarked.
    """
    from reelforge.errors import UserInputError, VerificationFailedError
    from reelforge.platform.config import ServeAppConfig, read_serve_file
    from reelforge.provenance.verification import verify_video

    if not file.is_file():
        raise UserInputError(f"{file} does not exist")
    app_config = read_serve_file(config)[0] if config else ServeAppConfig()
    report = verify_video(file, app_config.provenance, app_config.settings())
    if as_json:
        stdout.print_json(json.dumps(report.to_dict()))
    else:
        manifest, owner = report.manifest, report.owner
        stdout.print(f"verdict: [bold]{report.verdict}[/bold]")
        if manifest.present:
            stdout.print(
                f"C2PA manifest: {manifest.state}; source type {manifest.digital_source_type}; "
                f"generation {json.dumps(manifest.generation)}"
            )
        else:
            stdout.print("C2PA manifest: none")
        if report.watermark is not None:
            found = f"id {report.watermark.payload_id}" if report.watermark.found else "none"
            stdout.print(f"watermark: {found} (pilot z {report.watermark.pilot_z:.1f})")
        if owner is not None:
            stdout.print(f"made for tenant {owner.tenant}, request {owner.video_id}")
        for name, mark in report.marks.items():
            state = "valid" if mark.valid else ("present, not valid" if mark.present else "absent")
            stdout.print(f"{name}: {state}" + (f" ({'; '.join(mark.problems)})" if mark.problems else ""))
        for reason in report.reasons:
            stdout.print(f"  - {reason}")
    if not report.ok:
        raise VerificationFailedError(f"{file}: {report.verdict}: {'; '.join(report.reasons)}")


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="Where the MP4s, contact sheet and demo home go.")] = Path("demo-output"),
    clips: Annotated[int, typer.Option(help="Footage clips per tenant.")] = 16,
    steps: Annotated[int, typer.Option(help="Fine-tuning steps per tenant.")] = 300,
    eval_prompts: Annotated[int, typer.Option(help="Held-out prompts of the quality table (x 2 seeds).")] = 48,
) -> None:
    """The whole story on this machine: platform up, two tenants fine-tune through the API, generate, compare, stop."""
    import json as json_module

    from reelforge.demo import DemoConfig, run_demo
    from reelforge.errors import UserInputError

    if clips < 2 or steps < 1 or not 1 <= eval_prompts <= 168:
        raise UserInputError("--clips must be at least 2, --steps at least 1, --eval-prompts between 1 and 168")
    logging.basicConfig(level=logging.WARNING)
    result = run_demo(DemoConfig(out, clips, steps, eval_prompts), stderr)
    (out / "demo-result.json").write_text(json_module.dumps(result, indent=2) + "\n")


@app.command("up")
def up_command(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="HTTP bind address (default: the config's, else 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default: the config's, else 8000).")] = None,
) -> None:
    """Start the local platform (`reelforge serve`) in the background and wait until its API answers."""
    from reelforge.platform.daemon import DaemonFiles, start

    app_config, host, port = _serve_target(config, host, port)
    home = app_config.settings().home
    stderr.print("starting reelforge in the background (Ray, MLflow store, Serve) ...")
    pid = start(home, config, host, port)
    stderr.print(
        f"reelforge is up (pid {pid}): API http://{host}:{port}/v1, Ray dashboard http://127.0.0.1:8265, "
        f"log {DaemonFiles.under(home).log}; `reelforge down` stops it"
    )


@app.command("down")
def down_command(config: ConfigOption = None) -> None:
    """Stop the platform `reelforge up` started (accepted jobs resume at the next start)."""
    from reelforge.platform.config import ServeAppConfig, read_serve_file
    from reelforge.platform.daemon import stop

    app_config = read_serve_file(config)[0] if config else ServeAppConfig()
    pid = stop(app_config.settings().home)
    stderr.print(f"stopped reelforge (pid {pid})" if pid else "reelforge is not running")
