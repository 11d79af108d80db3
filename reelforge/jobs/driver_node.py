"""Keeping Ray tasks that read the driver's local files on the driver's node.

Footage a fine-tune ingests and the latent shards ingestion writes are on the disk of the node
whose process runs the job (the driver), not on shared storage: on a cluster whose nodes share
nothing, a read task the scheduler puts elsewhere finds no file. Tasks that open those paths are
pinned here; what they return travels through Ray's object store to any node.
"""

from __future__ import annotations


def on_driver_node() -> dict:
    """Ray remote args (`scheduling_strategy`) that run a task on this process's node; {} without Ray."""
    import ray

    if not ray.is_initialized():
        return {}
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return {"scheduling_strategy": NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)}
