"""Several generations at once on one loaded pipeline each give exactly their solo result.

The calls are held in lockstep (a barrier after every denoising step), so each step of one call
runs while the others are mid-generation: any state kept on the shared pipeline or its models (the
reference features, the pose, the scheduler, the guidance) would leak from one call into another.
"""

import sys
import threading

import numpy as np
import pytest
import torch
from PIL import ImageOps

from parts2whole.pipeline import tokenize
from parts2whole.runtime import make_scheduler
from parts2whole.testing.inputs import call_kwargs, densepose_image

STEPS = 3


def varied_calls(pipe, count: int) -> list[dict]:
    """Calls that differ in everything a call can keep: parts, masks, pose, guidance, scheduler, seed."""
    variants = [
        dict(count=1, with_masks=False, guidance_scale=7.5, scheduler="ddim", mirrored=False),
        dict(count=3, with_masks=True, guidance_scale=1.0, scheduler="dpm++2m", mirrored=True),
        dict(count=2, with_masks=True, guidance_scale=3.0, scheduler="dpm++2m", mirrored=False),
        dict(count=6, with_masks=False, guidance_scale=5.0, scheduler="ddim", mirrored=True),
    ]
    calls = []
    for index, variant in enumerate(variants[:count]):
        pose = densepose_image()
        calls.append(
            call_kwargs(
                variant["count"], variant["with_masks"], seed=index, num_inference_steps=STEPS,
                guidance_scale=variant["guidance_scale"], scheduler=make_scheduler(variant["scheduler"], pipe.scheduler.config),
                structure={"densepose": ImageOps.mirror(pose) if variant["mirrored"] else pose},
            )
        )  # fmt: skip
    return calls


def run_together(pipe, calls: list[dict]) -> list[np.ndarray]:
    barrier = threading.Barrier(len(calls), timeout=60)
    results: list[np.ndarray | BaseException | None] = [None] * len(calls)

    def in_lockstep(pipeline, step, timestep, tensors):
        barrier.wait()
        return tensors

    def run(index: int) -> None:
        try:
            results[index] = pipe(**calls[index], callback_on_step_end=in_lockstep).images
        except BaseException as error:  # reported below, in the test's thread
            barrier.abort()
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


@pytest.mark.parametrize("count", [2, 4])
def test_generations_at_once_equal_their_solo_runs(pipe, count):
    calls = varied_calls(pipe, count)
    solo = [pipe(**call).images for call in varied_calls(pipe, count)]
    assert all(np.abs(solo[0] - other).max() > 1e-3 for other in solo[1:])  # the calls do differ
    together = run_together(pipe, calls)
    for alone, shared in zip(solo, together, strict=True):
        np.testing.assert_array_equal(shared, alone)


def test_the_given_scheduler_is_not_stepped(pipe):
    """A call steps its own copy: a scheduler shared by the demo's calls keeps no call's state."""
    scheduler = make_scheduler("dpm++2m", pipe.scheduler.config)
    before = dict(vars(scheduler))
    pipe(**call_kwargs(2, num_inference_steps=STEPS, scheduler=scheduler))
    assert scheduler.num_inference_steps is None and vars(scheduler).keys() == before.keys()
    assert torch.equal(scheduler.timesteps, before["timesteps"])


def test_tokenizing_at_once_keeps_each_calls_padding(pipe):
    """The fast tokenizer sets padding and truncation on a shared object for each call: a prompt
    padded to the encoder's length must not come back at another thread's `longest` length."""
    max_length = pipe.tokenizer.model_max_length
    lengths: list[int] = []

    def padded_to_max_length() -> None:
        for _ in range(1500):
            padded = tokenize(pipe.tokenizer, ["a person standing"], padding="max_length", max_length=max_length, truncation=True)
            lengths.append(padded.shape[-1])

    def padded_to_longest() -> None:
        for _ in range(1500):
            tokenize(pipe.tokenizer, ["a person", "x"], padding="longest")

    threads = [threading.Thread(target=padded_to_max_length), threading.Thread(target=padded_to_longest)]
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # the threads take turns often, so an unguarded tokenizer shows its race
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch_interval)
    assert set(lengths) == {max_length}
