"""Where a fine-tune's workers run: on GPUs or CPUs, and on which nodes.

On an autoscaling cluster the GPU train nodes scale from zero, so the GPUs present when a job is
submitted say nothing about the GPUs it can have. The cluster's *declared* shape does: the
operator states what a train node has (`REELFORGE_TRAIN_NODE_GPUS`, set on the head by
`cluster.yaml` and the KubeRay manifest), and the label resource train nodes carry
(`REELFORGE_TRAIN_NODE_RESOURCE`, `train-node`). Workers then ask for GPUs the autoscaler can add,
and for a sliver of the label, so they never take a serve node's GPU. Without a declared shape
(one machine, a laptop, the tests) the GPUs present decide. The precision follows the GPU a worker
gets, so it is probed in the worker (`resolve_precision`), not on the CPU-only head.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reelforge.errors import UserInputError

LABEL_SHARE = 0.001  # of the label resource per worker: any number of workers fit on a labelled node


@dataclass(frozen=True)
class ClusterShape:
    """What training can be given: GPUs up now, and what the operator declared a train node has."""

    gpus_now: int
    train_node_gpus: int | None = None  # declared GPUs per train node (None: no declaration)
    train_node_resource: str | None = None  # the label resource train nodes carry


@dataclass(frozen=True)
class TrainingPlacement:
    """Ray Train's scaling for one job: GPUs or not, the extra resources each worker asks for, and why."""

    use_gpu: bool
    resources_per_worker: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def plan_training_placement(workers: int, use_gpu: bool | None, shape: ClusterShape) -> TrainingPlacement:
    """The placement of `workers` workers; `use_gpu` is the job's own choice (None: decided by the shape)."""
    if shape.train_node_gpus is not None and shape.train_node_gpus < 0:
        raise UserInputError(f"REELFORGE_TRAIN_NODE_GPUS must be 0 or more, got {shape.train_node_gpus}")
    if use_gpu is not None:
        gpu, reason = use_gpu, "the job's use_gpu setting"
    elif shape.train_node_gpus is not None:
        # The autoscaler adds train nodes for workers that ask for GPUs, even from zero nodes.
        gpu = shape.train_node_gpus > 0
        reason = f"the cluster declares {shape.train_node_gpus} GPU(s) per train node"
    else:
        gpu = shape.gpus_now >= workers
        reason = f"{shape.gpus_now} GPU(s) up now for {workers} worker(s) (no declared train-node shape)"
    resources: dict[str, float] = {}
    if shape.train_node_resource:
        # Ray Train adds the GPU itself; a CPU worker with custom resources must name its CPU.
        resources = {shape.train_node_resource: LABEL_SHARE, **({} if gpu else {"CPU": 1.0})}
        reason += f"; workers ask for the {shape.train_node_resource!r} label"
    return TrainingPlacement(gpu, resources, reason)


def cpu_threads_per_worker(cores: int, workers_on_node: int) -> int:
    """Torch threads for a CPU training worker: the node's cores shared evenly by its workers.

    Ray sets OMP_NUM_THREADS to a worker's CPU request (1), which leaves a lone CPU worker on one core
    while the rest of the machine idles; more threads than cores only adds contention.
    """
    return max(1, cores // max(1, workers_on_node))
