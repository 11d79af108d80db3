"""Where a fine-tune's workers go: GPUs from the cluster's declared train-node shape (nodes may be
scaled to zero), the label that keeps them off serve nodes, and the settings that carry the shape."""

from __future__ import annotations

import pytest

from reelforge.errors import UserInputError
from reelforge.jobs.training_placement import (
    LABEL_SHARE,
    ClusterShape,
    cpu_threads_per_worker,
    plan_training_placement,
)
from reelforge.platform.config import ServeAppConfig
from reelforge.platform.fine_tuning.supervisor import driver_env
from reelforge.settings import Settings


def test_a_declared_gpu_shape_trains_on_gpus_with_no_gpu_up_yet():
    """The shipped cluster: train nodes scale from zero, so no GPU is up when the job starts."""
    placement = plan_training_placement(4, None, ClusterShape(0, train_node_gpus=4, train_node_resource="train-node"))
    assert placement.use_gpu and placement.resources_per_worker == {"train-node": LABEL_SHARE}
    assert "declares 4 GPU(s) per train node" in placement.reason


def test_a_declared_cpu_shape_trains_on_cpus_and_still_on_train_nodes():
    placement = plan_training_placement(2, None, ClusterShape(8, train_node_gpus=0, train_node_resource="train-node"))
    assert not placement.use_gpu
    assert placement.resources_per_worker == {"train-node": LABEL_SHARE, "CPU": 1.0}  # Ray Train adds no CPU itself


@pytest.mark.parametrize(("gpus_now", "use_gpu"), [(0, False), (1, False), (2, True)])
def test_without_a_declaration_the_gpus_up_now_decide(gpus_now, use_gpu):
    placement = plan_training_placement(2, None, ClusterShape(gpus_now))
    assert placement.use_gpu is use_gpu and placement.resources_per_worker == {}


def test_the_jobs_own_choice_wins():
    shape = ClusterShape(0, train_node_gpus=8, train_node_resource="train-node")
    assert not plan_training_placement(2, False, shape).use_gpu
    assert plan_training_placement(2, True, ClusterShape(0)).use_gpu


def test_the_shape_comes_from_the_environment_and_reaches_the_job_driver(monkeypatch, tmp_path):
    env = {
        "REELFORGE_HOME": str(tmp_path),
        "REELFORGE_TRAIN_NODE_GPUS": "4",
        "REELFORGE_TRAIN_NODE_RESOURCE": "train-node",
    }
    settings = Settings.from_env(env)
    assert (settings.train_node_gpus, settings.train_node_resource) == (4, "train-node")
    with pytest.raises(UserInputError, match="REELFORGE_TRAIN_NODE_GPUS must be a whole number, got 'four'"):
        Settings.from_env({**env, "REELFORGE_TRAIN_NODE_GPUS": "four"})
    with pytest.raises(UserInputError, match="must be 0 or more"):
        plan_training_placement(1, None, ClusterShape(0, train_node_gpus=-1))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    passed = driver_env(ServeAppConfig(home=str(tmp_path)))
    assert passed["REELFORGE_TRAIN_NODE_GPUS"] == "4" and passed["REELFORGE_TRAIN_NODE_RESOURCE"] == "train-node"


@pytest.mark.parametrize(("cores", "workers", "threads"), [(2, 1, 2), (2, 2, 1), (16, 4, 4), (2, 3, 1), (1, 0, 1)])
def test_cpu_workers_share_the_node_cores_evenly(cores, workers, threads):
    assert cpu_threads_per_worker(cores, workers) == threads
