"""The training path of the shared self-attention (a batch of different people, per-sample parts).

Each test compares the training path with a computation that does not go through it: the same
sample alone, the inference path (cached, folded zero key), or diffusers' plain `AttnProcessor2_0`.
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from diffusers.models.attention_processor import AttnProcessor2_0

from parts2whole import MAX_PARTS
from parts2whole.attention import install_processors
from parts2whole.reference import (
    ReferenceBank,
    capture_reference_features,
    capture_training_features,
    unused_reference_keys,
)
from parts2whole.testing.tiny_models import HIDDEN, tiny_components

HEIGHT, WIDTH = 64, 48
CONTEXT_TOKENS = 77 + MAX_PARTS
TOLERANCE = 1e-5
EFFECT = 1e-3  # the smallest difference that shows an input took effect


@dataclass
class Person:
    """One training sample: MAX_PARTS part slots (all filled with data) and which are present."""

    latents: torch.Tensor  # (P, 4, h, w)
    part_masks: torch.Tensor  # (P, 1, H, W)
    present: torch.Tensor  # (P,) bool
    noisy: torch.Tensor  # (4, h, w)
    context: torch.Tensor  # (77 + P, D)
    timestep: int


def make_person(seed: int, present_slots: list[int]) -> Person:
    """Random references with a mask per slot, a box in the upper left that leaves the bottom row
    of tokens zero on every grid, placed differently for each slot and person."""
    generator = torch.Generator().manual_seed(seed)
    part_masks = torch.zeros(MAX_PARTS, 1, HEIGHT, WIDTH)
    for slot in range(MAX_PARTS):
        top, left = (seed + 3 * slot) % 8, (seed + 5 * slot) % 12
        part_masks[slot, :, top : top + 24, left : left + 24] = 1.0
    present = torch.zeros(MAX_PARTS, dtype=torch.bool)
    present[present_slots] = True
    return Person(
        latents=torch.randn(MAX_PARTS, 4, HEIGHT // 8, WIDTH // 8, generator=generator),
        part_masks=part_masks,
        present=present,
        noisy=torch.randn(4, HEIGHT // 8, WIDTH // 8, generator=generator),
        context=torch.randn(CONTEXT_TOKENS, HIDDEN, generator=generator),
        timestep=100 + seed * 37,
    )


@pytest.fixture(scope="module")
def models() -> tuple:
    components = tiny_components()
    unet, reference_unet = components["unet"], components["reference_unet"]
    install_processors(unet, reference_unet)
    label_embeds = torch.randn(MAX_PARTS, 77, HIDDEN, generator=torch.Generator().manual_seed(99))
    return unet, reference_unet, label_embeds


def unet_input(people: list[Person]) -> dict:
    return {
        "sample": torch.stack([p.noisy for p in people]),
        "timestep": torch.tensor([p.timestep for p in people]),
        "encoder_hidden_states": torch.stack([p.context for p in people]),
    }


def training_forward(
    models: tuple, people: list[Person], present: torch.Tensor | None = None, backward: bool = False
) -> torch.Tensor:
    """The UNet's noise prediction for a training batch of `people` (`present` overrides theirs);
    with `backward`, a squared-prediction loss is also backpropagated inside the training batch."""
    unet, reference_unet, label_embeds = models
    present = torch.stack([p.present for p in people]) if present is None else present
    with ReferenceBank().training_batch(present) as bank:
        capture_training_features(
            reference_unet,
            bank,
            torch.stack([p.latents for p in people]),
            label_embeds,
            torch.stack([p.part_masks for p in people]),
        )
        prediction = unet(**unet_input(people)).sample
        if backward:
            prediction.square().mean().backward()
    return prediction


def inference_forward(models: tuple, person: Person, slots: list[int]) -> tuple[torch.Tensor, dict]:
    """The same sample through the generation path (as the pipeline fills the bank, CFG off),
    with only `slots`; returns the prediction and the processors' cache."""
    unet, reference_unet, label_embeds = models
    with ReferenceBank().active() as bank:
        capture_reference_features(
            reference_unet, bank, person.latents[slots], label_embeds[slots], person.part_masks[slots]
        )
        bank.num_uncond = 0
        return unet(**unet_input([person])).sample, dict(bank.cache)


def plain_self_attention_forward(models: tuple, person: Person) -> torch.Tensor:
    """The UNet with diffusers' own self-attention everywhere (decoupled cross-attention kept)."""
    unet = models[0]
    installed = dict(unet.attn_processors)
    plain = {
        key: AttnProcessor2_0() if key.endswith("attn1.processor") else processor
        for key, processor in installed.items()
    }
    unet.set_attn_processor(plain)
    try:
        return unet(**unet_input([person])).sample
    finally:
        unet.set_attn_processor(installed)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@torch.no_grad()
def test_batch_of_people_equals_each_alone(models) -> None:
    first, second = make_person(1, [0, 2, 3]), make_person(2, [1])
    batch = training_forward(models, [first, second])
    first_alone = training_forward(models, [first])
    second_alone = training_forward(models, [second])
    print(f"\nbatch vs alone: {max_diff(batch[:1], first_alone):.2e}, {max_diff(batch[1:], second_alone):.2e}")
    assert max_diff(batch[:1], first_alone) < TOLERANCE
    assert max_diff(batch[1:], second_alone) < TOLERANCE
    # Each sample's own parts matter, so seeing the other sample's parts would have shown.
    assert max_diff(first_alone, plain_self_attention_forward(models, first)) > EFFECT
    assert max_diff(second_alone, plain_self_attention_forward(models, second)) > EFFECT


@torch.no_grad()
@pytest.mark.parametrize("slots", [[4], [0, 2, 5], list(range(MAX_PARTS))])
def test_training_equals_inference(models, slots: list[int]) -> None:
    person = make_person(3, slots)
    training = training_forward(models, [person])
    inference, cache = inference_forward(models, person, slots)
    assert all(not value[..., -1, :].any() for _, value in cache.values()), "masks must zero some tokens: a fold key"
    print(f"\ntraining vs inference, slots {slots}: {max_diff(training, inference):.2e}")
    assert max_diff(training, inference) < TOLERANCE
    assert max_diff(training, plain_self_attention_forward(models, person)) > EFFECT


@torch.no_grad()
def test_sample_without_parts_gets_plain_self_attention(models) -> None:
    with_parts, without = make_person(4, [0, 1]), make_person(5, [])
    plain = plain_self_attention_forward(models, without)
    in_batch = training_forward(models, [with_parts, without])[1:]
    alone = training_forward(models, [without])
    print(f"\nno parts vs plain: in a batch {max_diff(in_batch, plain):.2e}, alone {max_diff(alone, plain):.2e}")
    assert max_diff(in_batch, plain) < TOLERANCE
    assert max_diff(alone, plain) < TOLERANCE
    every_part = torch.ones(1, MAX_PARTS, dtype=torch.bool)
    assert max_diff(training_forward(models, [without], every_part), plain) > EFFECT


@torch.no_grad()
def test_dropped_part_equals_running_without_it(models) -> None:
    person, other = make_person(6, [0, 1, 2]), make_person(7, [1, 3])
    dropped = torch.stack([person.present, other.present])
    dropped[0, 1] = False
    with_drop = training_forward(models, [person, other], dropped)[:1]
    without_part, _ = inference_forward(models, person, [0, 2])
    with_part = training_forward(models, [person, other])[:1]
    print(f"\ndropped vs absent: {max_diff(with_drop, without_part):.2e}")
    assert max_diff(with_drop, without_part) < TOLERANCE
    assert max_diff(with_part, without_part) > EFFECT


def trainable_models() -> tuple:
    """Fresh models (the module's fixture runs without gradients and must stay unchanged)."""
    components = tiny_components()
    unet, reference_unet = components["unet"], components["reference_unet"]
    install_processors(unet, reference_unet)
    return unet, reference_unet, torch.randn(MAX_PARTS, 77, HIDDEN, generator=torch.Generator().manual_seed(9))


def gradients(model: torch.nn.Module, backward: Callable[[], None]) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    backward()
    return {name: param.grad.clone() for name, param in model.named_parameters() if param.grad is not None}


def test_gradients_reach_the_reference_unet() -> None:
    """The loss reaches the appearance encoder, and its gradients are the inference path's."""
    trainable = trainable_models()
    reference_unet = trainable[1]
    person = make_person(8, [0, 3])
    training = gradients(reference_unet, lambda: training_forward(trainable, [person], backward=True))
    inference = gradients(
        reference_unet, lambda: inference_forward(trainable, person, [0, 3])[0].square().mean().backward()
    )
    used = {name for name, _ in reference_unet.named_parameters()} - unused_reference_keys(reference_unet)
    attention_weights = {name for name in used if ".attn1." in name or ".attn2." in name}
    assert attention_weights and attention_weights <= training.keys()
    assert all(training[name].abs().sum() > 0 for name in attention_weights)
    assert training.keys() == inference.keys()
    for name in training:
        torch.testing.assert_close(training[name], inference[name], rtol=1e-4, atol=1e-7)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    """With the backward inside the training batch, both UNets may recompute their blocks."""
    trainable = trainable_models()
    unet, reference_unet = trainable[:2]
    people = [make_person(10, [0, 3]), make_person(11, [2])]

    def all_gradients() -> dict[str, torch.Tensor]:
        unet.zero_grad(set_to_none=True)
        reference = gradients(reference_unet, lambda: training_forward(trainable, people, backward=True))
        own = {f"unet.{name}": param.grad for name, param in unet.named_parameters() if param.grad is not None}
        return reference | own

    expected = all_gradients()
    unet.enable_gradient_checkpointing()
    reference_unet.enable_gradient_checkpointing()
    checkpointed = all_gradients()
    assert checkpointed.keys() == expected.keys()
    for name in expected:
        torch.testing.assert_close(checkpointed[name], expected[name], rtol=1e-5, atol=1e-7)


@torch.no_grad()
def test_a_unet_batch_other_than_the_training_batch_is_refused(models) -> None:
    """Two people's parts in the bank, the UNet run on three rows: the rows cannot be matched to
    their samples, so the first shared self-attention says so."""
    unet, reference_unet, label_embeds = models
    people = [make_person(1, [0, 2]), make_person(2, [1])]
    with ReferenceBank().training_batch(torch.stack([p.present for p in people])) as bank:
        capture_training_features(
            reference_unet, bank, torch.stack([p.latents for p in people]), label_embeds, torch.stack([p.part_masks for p in people])
        )
        three = unet_input([*people, people[0]])
        with pytest.raises(ValueError) as error:
            unet(**three)
    assert str(error.value) == "The training batch has 2 samples; the UNet got 3."
