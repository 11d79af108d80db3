"""Pure pieces of the training loop: deterministic batches, balanced eval slices, objective overrides, holdout split."""

from __future__ import annotations

import pytest
import torch

from reelforge.jobs.finetune_config import build_config
from reelforge.jobs.ingest import LatentClip
from reelforge.jobs.train_evaluation import balanced_slice
from reelforge.jobs.train_worker import LatentBatches, configured_objective
from reelforge.jobs.training_data import split_holdout
from reelforge.models.objectives import DDPMObjective, FlowMatchingObjective


def _rows(shapes: list[tuple[int, ...]]) -> list[LatentClip]:
    return [LatentClip(torch.full(shape, float(i)), torch.full((4, 8), float(i))) for i, shape in enumerate(shapes)]


def test_batches_are_a_function_of_the_step_so_resumed_runs_replay_them():
    rows = _rows([(2, 1, 2, 2)] * 6)
    first, again = LatentBatches(rows, 3, seed=0, rank=0), LatentBatches(rows, 3, seed=0, rank=0)
    for k in (0, 7, 123):
        a, b = first(k), again(k)
        assert torch.equal(a.latents, b.latents) and torch.equal(a.text, b.text)
        assert a.condition is None  # a family without a cached condition
        assert torch.equal(torch.randn(3, generator=a.generator), torch.randn(3, generator=b.generator))  # same noise
    other_rank = LatentBatches(rows, 3, seed=0, rank=1)
    assert any(not torch.equal(first(k)[0], other_rank(k)[0]) for k in range(5))


def test_batches_carry_each_clips_cached_condition_with_it():
    rows = [
        LatentClip(torch.full((2, 1, 2, 2), float(i)), torch.zeros(4, 8), torch.full((6, 1, 2, 2), float(i)))
        for i in range(5)
    ]
    batch = LatentBatches(rows, 3, seed=1, rank=0)(4)
    assert batch.condition.shape == (3, 6, 1, 2, 2)
    # the condition of each sample is its own clip's: the fill value names the clip in both
    assert torch.equal(batch.condition[:, 0, 0, 0, 0], batch.latents[:, 0, 0, 0, 0])


def test_batches_never_mix_latent_shapes():
    rows = _rows([(2, 1, 2, 2)] * 3 + [(2, 1, 2, 4)] * 3)  # two aspect-ratio buckets
    batches = LatentBatches(rows, 4, seed=3, rank=0)
    seen = {tuple(batches(k)[0].shape[1:]) for k in range(20)}
    assert seen == {(2, 1, 2, 2), (2, 1, 2, 4)}  # both buckets used, each batch a single shape (stack would fail)


@pytest.mark.parametrize(("count", "world"), [(7, 2), (8, 4), (1, 3), (0, 2)])
def test_balanced_slices_cover_everything_once_with_equal_lengths(count: int, world: int):
    slices = [balanced_slice(count, rank, world) for rank in range(world)]
    assert len({len(s) for s in slices}) == 1  # ZeRO-3 ranks run the same number of forwards
    real = sorted(i for s in slices for i in s if i is not None)
    assert real == list(range(count))


def test_objective_takes_the_jobs_sampling_and_shift_only_for_flow_matching():
    job = build_config({"tenant": "acme", "data": "/x"}, ["timestep_sampling=uniform", "timestep_shift=3"])
    flow = configured_objective(FlowMatchingObjective(shift=5.0), job)
    assert (flow.sampling, flow.shift) == ("uniform", 3.0)
    unshifted = configured_objective(FlowMatchingObjective(shift=5.0), build_config({"tenant": "acme", "data": "/x"}))
    assert unshifted.shift == 5.0  # unset: the model's own shift
    assert configured_objective(DDPMObjective(), job) == DDPMObjective()


def test_holdout_split_is_by_video_deterministic_and_never_empties_training():
    shards = [f"shards/{i}.parquet" for i in range(10)]
    train, holdout = split_holdout(shards, 0.2, seed=0)
    assert len(holdout) == 2 and not set(train) & set(holdout) and sorted(train + holdout) == sorted(shards)
    assert split_holdout(shards, 0.2, seed=0) == (train, holdout)
    assert split_holdout(shards[:1], 0.5, seed=0) == (shards[:1], [])
    assert split_holdout(shards[:2], 0.9, seed=0)[0]  # at least one training video stays
    assert split_holdout(shards, 0.0, seed=0) == (sorted(shards), [])
