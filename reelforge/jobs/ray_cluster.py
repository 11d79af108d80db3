"""Connect to the configured Ray cluster, or start a local one bound to loopback."""

from __future__ import annotations

import os

from reelforge.settings import Settings


def ensure_ray(settings: Settings, dashboard: bool = False, dashboard_port: int | None = None) -> None:
    """Join `settings.ray_address`, or start a local Ray on 127.0.0.1 (dashboard, if asked, on loopback too).

    Local mode asks for at least 4 logical CPUs: on a 2-core machine Ray Data's actor pool and
    tasks would otherwise wait on each other. Ray's ports are code execution, so nothing binds
    beyond loopback.
    """
    import ray
    import ray.data

    # Ray Data prints its whole context to stdout when a dataset starts; stdout is for our --json.
    ray.data.DataContext.get_current().print_on_execution_start = False
    if ray.is_initialized():
        return
    if settings.ray_address:
        ray.init(address=settings.ray_address, log_to_driver=False)
        return
    ray.init(
        num_cpus=max(4, os.cpu_count() or 1),
        include_dashboard=dashboard,
        _node_ip_address="127.0.0.1",
        dashboard_host="127.0.0.1",
        log_to_driver=False,
        configure_logging=False,
        **({"dashboard_port": dashboard_port} if dashboard_port else {}),
    )
