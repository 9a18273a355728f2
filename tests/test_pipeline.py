"""What a generation does: docs/method.md §4's semantics and §5's faults not reproduced."""

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, EulerDiscreteScheduler
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from transformers.utils import logging as transformers_logging

from parts2whole import Parts2WholePipeline
from parts2whole.reference import active_bank
from parts2whole.testing.inputs import HEIGHT, WIDTH, call_kwargs, make_parts, noise_image, rectangle_mask


def record_inputs(module: torch.nn.Module) -> list[dict]:
    """Record the keyword arguments of every forward of `module`."""
    calls = []
    module.register_forward_pre_hook(lambda m, args, kwargs: calls.append({"args": args, **kwargs}), with_kwargs=True)
    return calls


def encode_directly(pipe, texts: list[str]) -> torch.Tensor:
    """The text encoder's last hidden states of `texts`, computed here rather than by the pipeline."""
    tokens = pipe.tokenizer(texts, padding="max_length", max_length=pipe.tokenizer.model_max_length,
                            truncation=True, return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        return pipe.text_encoder(tokens.input_ids)[0]


def test_each_label_is_encoded_with_its_own_text_in_head_to_toe_order(pipe) -> None:
    """Parts given as shoes, hair, upper body: the appearance encoder's rows are hair, upper body,
    shoes (head to toe, not the given order nor the alphabetical one: hair, shoes, upper), each
    row with its own label's text and its own reference: changing the shoes' image changes row 2 only."""
    given = ["shoes", "hair or headwear", "upper body clothes"]
    head_to_toe = ["hair or headwear", "upper body clothes", "shoes"]
    assert head_to_toe != sorted(given)
    appearance = {label: noise_image(20 + i, (32, 40)) for i, label in enumerate(given)}
    calls = record_inputs(pipe.reference_unet)
    pipe(**call_kwargs(appearance=appearance, mask=None))
    assert len(calls) == 1, "the appearance encoder runs once per generation"
    torch.testing.assert_close(calls[0]["encoder_hidden_states"], encode_directly(pipe, head_to_toe), rtol=0, atol=1e-6)
    pipe(**call_kwargs(appearance={**appearance, "shoes": noise_image(99, (32, 40))}, mask=None))
    changed = (calls[0]["args"][0] - calls[1]["args"][0]).flatten(1).abs().amax(1)
    assert changed[2] > 1e-3 and changed[:2].max() == 0


def test_prompt_is_the_users_prompt(pipe) -> None:
    calls = record_inputs(pipe.unet)
    pipe(**call_kwargs(2, prompt="a tall woman", negative_prompt="blurry"))
    context = calls[0]["encoder_hidden_states"]
    assert context.shape[:2] == (2, 77 + 6)
    torch.testing.assert_close(context[1:, :77], encode_directly(pipe, ["a tall woman"]))
    torch.testing.assert_close(context[:1, :77], encode_directly(pipe, ["blurry"]))
    assert not context[:1, 77:].any(), "the unconditional branch has all-zero image tokens"
    assert context[1:, 77:79].abs().sum(-1).gt(0).all() and not context[1:, 79:].any()


def test_prompt_changes_the_result(pipe) -> None:
    first = pipe(**call_kwargs(2, prompt="a person standing")).images
    second = pipe(**call_kwargs(2, prompt="a child running")).images
    assert np.abs(first - second).max() > 1e-3


def test_mask_changes_the_result(pipe) -> None:
    appearance, masks = make_parts(2, with_masks=True)
    with_masks = pipe(**call_kwargs(2, with_masks=True)).images
    without = pipe(**call_kwargs(2, with_masks=False)).images
    other = {label: rectangle_mask(appearance[label].size, (0.5, 0.5, 1.0, 1.0)) for label in masks}
    other_masks = pipe(**call_kwargs(2, mask=other)).images
    assert np.abs(with_masks - without).max() > 1e-3
    assert np.abs(with_masks - other_masks).max() > 1e-3


def test_alpha_channel_is_the_default_mask(pipe) -> None:
    appearance, masks = make_parts(1, with_masks=True)
    label = next(iter(appearance))
    rgba = appearance[label].convert("RGBA")
    rgba.putalpha(masks[label])
    from_alpha = pipe(**call_kwargs(1, appearance={label: rgba}, mask=None)).images
    from_mask = pipe(**call_kwargs(1, appearance={label: rgba}, mask=masks)).images
    opaque = pipe(**call_kwargs(1, appearance={label: rgba.convert("RGB")}, mask=None)).images
    np.testing.assert_allclose(from_alpha, from_mask, atol=1e-6)
    assert np.abs(from_alpha - opaque).max() > 1e-3


def test_same_seed_same_image_other_seed_other_image(pipe) -> None:
    first = pipe(**call_kwargs(2, seed=1)).images
    again = pipe(**call_kwargs(2, seed=1)).images
    other = pipe(**call_kwargs(2, seed=2)).images
    np.testing.assert_array_equal(first, again)
    assert np.abs(first - other).max() > 1e-3


def test_part_order_does_not_change_the_result(pipe) -> None:
    kwargs = call_kwargs(4)
    forward = pipe(**kwargs).images
    kwargs = call_kwargs(4)
    kwargs["appearance"] = dict(reversed(list(kwargs["appearance"].items())))
    kwargs["mask"] = dict(reversed(list(kwargs["mask"].items())))
    np.testing.assert_array_equal(forward, pipe(**kwargs).images)


def test_pose_changes_the_result(pipe) -> None:
    first = pipe(**call_kwargs(2, output_type="latent")).images
    blank = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    second = pipe(**call_kwargs(2, output_type="latent", structure={"densepose": blank})).images
    assert (first - second).abs().max() > 1e-3


def test_guidance_scale_one_runs_without_the_unconditional_branch(pipe) -> None:
    calls = record_inputs(pipe.unet)
    images = pipe(**call_kwargs(2, guidance_scale=1.0, num_images_per_prompt=2)).images
    assert images.shape == (2, HEIGHT, WIDTH, 3) and np.isfinite(images).all()
    assert all(call["args"][0].shape[0] == 2 for call in calls)
    calls.clear()
    pipe(**call_kwargs(2, guidance_scale=3.0, num_images_per_prompt=2))
    assert all(call["args"][0].shape[0] == 4 for call in calls)


def test_no_parts_make_the_conditional_branch_the_unconditional_one(pipe) -> None:
    """`appearance={}`: no appearance encoder run, zero image tokens, plain self-attention. So with
    the negative prompt equal to the prompt the two branches predict the same noise, and guidance
    then changes nothing; with parts the same prompts give two different predictions."""
    reference_calls = record_inputs(pipe.reference_unet)
    predictions = []
    pipe.unet.register_forward_hook(lambda module, args, output: predictions.append(output.sample))
    same_prompts = dict(prompt="a person", negative_prompt="a person")
    guided = pipe(**call_kwargs(appearance={}, mask=None, **same_prompts)).images
    assert not reference_calls
    for noise in predictions:
        uncond, cond = noise.chunk(2)
        torch.testing.assert_close(cond, uncond, rtol=0.0, atol=0.0)
    unguided = pipe(**call_kwargs(appearance={}, mask=None, guidance_scale=1.0, **same_prompts)).images
    np.testing.assert_allclose(guided, unguided, atol=1e-5)

    predictions.clear()
    pipe(**call_kwargs(2, **same_prompts))
    uncond, cond = predictions[0].chunk(2)
    assert (cond - uncond).abs().max() > 1e-4


def test_each_image_of_a_batch_is_reproducible_from_its_own_generator(pipe) -> None:
    generators = [torch.Generator().manual_seed(s) for s in (5, 6)]
    batch = pipe(**call_kwargs(2, num_images_per_prompt=2, generator=generators)).images
    alone = pipe(**call_kwargs(2, generator=torch.Generator().manual_seed(6))).images
    np.testing.assert_allclose(batch[1], alone[0], atol=1e-5)


@pytest.mark.parametrize("scheduler_class", [DPMSolverMultistepScheduler, EulerDiscreteScheduler])
def test_other_schedulers_swap_in(pipe, scheduler_class) -> None:
    pipe.scheduler = scheduler_class.from_config(pipe.scheduler.config)
    images = pipe(**call_kwargs(2, num_inference_steps=3)).images
    assert images.shape == (1, HEIGHT, WIDTH, 3) and np.isfinite(images).all()


@pytest.mark.parametrize(
    ("output_type", "shape"),
    [("np", (1, HEIGHT, WIDTH, 3)), ("pt", (1, 3, HEIGHT, WIDTH)), ("latent", (1, 4, HEIGHT // 8, WIDTH // 8))],
)
def test_output_types(pipe, output_type, shape) -> None:
    assert tuple(pipe(**call_kwargs(1, output_type=output_type)).images.shape) == shape


def test_pil_output_and_tuple_return(pipe) -> None:
    (images,) = pipe(**call_kwargs(1, output_type="pil", return_dict=False))
    assert images[0].size == (WIDTH, HEIGHT) and images[0].mode == "RGB"


def test_callback_on_step_end_sees_every_step_and_can_edit_latents(pipe) -> None:
    steps = []

    def zero_latents(pipeline, step, timestep, tensors):
        steps.append(step)
        return {"latents": torch.zeros_like(tensors["latents"])}

    images = pipe(**call_kwargs(1, num_inference_steps=3, callback_on_step_end=zero_latents, output_type="latent")).images
    assert steps == [0, 1, 2] and not images.any()


def test_odd_small_size_runs(pipe) -> None:
    images = pipe(**call_kwargs(2, height=40, width=24)).images
    assert images.shape == (1, 40, 24, 3)


def test_a_failed_call_leaves_nothing_behind(pipe) -> None:
    """A call stopped by its callback (the demo's Stop) leaves no bank or pose active, and the next
    call gives exactly what it gives on a fresh pipeline."""
    expected = pipe(**call_kwargs(2)).images

    steps = []

    def fail(pipeline, step, timestep, tensors):
        steps.append(step)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        pipe(**call_kwargs(2, num_inference_steps=4, callback_on_step_end=fail))
    assert steps == [0] and active_bank() is None
    plain_conv_in = torch.randn(1, pipe.unet.config.in_channels, 8, 6)
    torch.testing.assert_close(pipe.unet.conv_in(plain_conv_in), torch.nn.functional.conv2d(
        plain_conv_in, pipe.unet.conv_in.weight, pipe.unet.conv_in.bias, padding=1))
    np.testing.assert_array_equal(pipe(**call_kwargs(2)).images, expected)


def test_model_cpu_offload_moves_each_model_on_in_the_order_that_frees_the_one_before(pipe) -> None:
    """Model offload on the CPU: accelerate moves a model onto the execution device ("cpu:0") when it
    is first used and offloads the model BEFORE IT IN `model_cpu_offload_seq` then (skipped on a CPU,
    where nothing has to move). So the order in which the models are first moved on must be the
    sequence itself, or a model that was used earlier stays on the GPU through the denoising loop.
    The moves are recorded here; the image must be the one made without offload."""
    expected = pipe(**call_kwargs(3)).images
    pipe.enable_model_cpu_offload(device="cpu")
    sequence = pipe.model_cpu_offload_seq.split("->")
    assert sorted(sequence) == sorted(name for name, model in pipe.components.items() if isinstance(model, torch.nn.Module))
    assert pipe._execution_device == torch.device("cpu", 0)
    moved_on = []
    for name in sequence:
        model = getattr(pipe, name)
        assert model._hf_hook.execution_device == torch.device("cpu", 0)
        move = model.to

        def recording_move(*args, name=name, move=move, **kwargs):
            if torch.device(args[0]) == torch.device("cpu", 0):
                moved_on.append(name)
            return move(*args, **kwargs)

        model.to = recording_move  # this test's own pipeline: nothing to restore
    np.testing.assert_allclose(pipe(**call_kwargs(3)).images, expected, atol=1e-6)
    first_uses = list(dict.fromkeys(moved_on))
    assert first_uses == sequence, f"models first used in the order {first_uses}"


SCHEDULER_INPUTS: list[torch.Tensor] = []


class RecordingDDIM(DDIMScheduler):
    """DDIM that records each step's noise prediction (what the guidance combined) in
    SCHEDULER_INPUTS: the pipeline runs a copy of the scheduler it is given."""

    def step(self, model_output, timestep, sample, *args, **kwargs):
        SCHEDULER_INPUTS.append(model_output.clone())
        return super().step(model_output, timestep, sample, *args, **kwargs)


@pytest.mark.parametrize("guidance_scale", [3.0, 7.5])
def test_guidance_combines_uncond_first_rows_with_the_scale(pipe, guidance_scale) -> None:
    """A UNet whose row r predicts the constant r + 1 (a forward hook replaces its output): with two
    images, rows 0-1 are the unconditional branch and rows 2-3 the conditional one, so image j must
    get (j + 1) + s * ((j + 3) - (j + 1)). Swapped halves or an ignored scale give other numbers."""
    contexts = []

    def stub(module, args, kwargs, output):
        contexts.append(kwargs["encoder_hidden_states"].clone())
        rows = torch.arange(1, output.sample.shape[0] + 1, dtype=output.sample.dtype).view(-1, 1, 1, 1)
        return type(output)(sample=rows.expand_as(output.sample).clone())

    scheduler = RecordingDDIM.from_config(pipe.scheduler.config)
    SCHEDULER_INPUTS.clear()
    handle = pipe.unet.register_forward_hook(stub, with_kwargs=True)
    try:
        pipe(**call_kwargs(2, guidance_scale=guidance_scale, num_images_per_prompt=2, negative_prompt="blurry"), scheduler=scheduler)
    finally:
        handle.remove()
    assert len(SCHEDULER_INPUTS) == 2  # one per step
    for prediction in SCHEDULER_INPUTS:
        for image in range(2):
            assert torch.all(prediction[image] == (image + 1) + guidance_scale * 2.0)
    # the unconditional rows (the first half) hold the negative prompt and zero image tokens; the
    # conditional rows the prompt and the parts' image tokens (texts encoded here, not by the pipeline)
    negative, prompt = encode_directly(pipe, ["blurry", "a person standing"])
    text_length = negative.shape[0]
    for context in contexts:
        assert context.shape[0] == 4
        for row in (0, 1):
            assert torch.allclose(context[row, :text_length], negative, atol=1e-5) and not context[row, text_length:].any()
        for row in (2, 3):
            assert torch.allclose(context[row, :text_length], prompt, atol=1e-5) and context[row, text_length:].abs().sum() > 0


def test_unconditional_rows_self_attention_is_plain_and_conditional_rows_see_the_parts(pipe) -> None:
    """Every self-attention layer of the denoising UNet, checked from the outside: with guidance and
    two images the first 2 rows (counted here: images x 1) are the unconditional branch and must equal
    plain self-attention of their own tokens (no parts); the conditional rows must not."""
    num_images = 2
    num_uncond = num_images  # one unconditional row per image
    calls = []

    def record(module, args, kwargs, output):
        calls.append((module, args[0].clone(), output.clone()))

    layers = [m for m in pipe.unet.modules() if isinstance(m, Attention) and not m.is_cross_attention]
    handles = [layer.register_forward_hook(record, with_kwargs=True) for layer in layers]
    try:
        pipe(**call_kwargs(3, guidance_scale=3.0, num_images_per_prompt=num_images))
    finally:
        for handle in handles:
            handle.remove()
    assert len(calls) == 2 * len(layers)  # every layer, both steps
    plain = AttnProcessor2_0()
    for module, hidden_states, output in calls:
        assert hidden_states.shape[0] == 2 * num_images
        with torch.no_grad():
            expected = plain(module, hidden_states)
        torch.testing.assert_close(output[:num_uncond], expected[:num_uncond], rtol=1e-5, atol=1e-5)
        assert (output[num_uncond:] - expected[num_uncond:]).abs().max() > 1e-3


def test_a_reduced_precision_pipeline_feeds_every_model_its_own_dtype(released_checkpoint) -> None:
    """Loaded in bfloat16 (fp16 on a GPU is the same path): references, pose, text and latents reach
    each model in its dtype (a float32 tensor into a bfloat16 layer would raise), and the image is
    float32's within bfloat16's precision."""
    images = {}
    for dtype in (torch.float32, torch.bfloat16):
        pipe = Parts2WholePipeline.from_pretrained(released_checkpoint[0], torch_dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        images[dtype] = pipe(**call_kwargs(2))[0]
    assert images[torch.bfloat16].dtype == np.float32
    assert np.abs(images[torch.bfloat16] - images[torch.float32]).max() < 0.1


def test_a_prompt_over_the_text_encoders_length_is_said_and_one_that_fits_is_not(pipe, caplog, monkeypatch) -> None:
    """Said once, in our words: transformers' own line about a long sequence (its loggers do not
    propagate unless asked) stays quiet."""
    monkeypatch.setattr(transformers_logging.get_logger(), "propagate", True)
    limit = pipe.tokenizer.model_max_length
    words = next(n for n in range(1, 4 * limit) if len(pipe.tokenizer(" ".join(["a"] * n)).input_ids) == limit)
    for count, said in ((words, False), (words + 1, True)):
        caplog.clear()
        pipe(**call_kwargs(1, prompt=" ".join(["a"] * count), num_inference_steps=1))
        cut = [record.getMessage() for record in caplog.records if "cut" in record.getMessage() or "Token indices" in record.getMessage()]
        assert cut == ([f"Prompts are cut to the text encoder's {limit} tokens."] if said else [])


def test_given_latents_start_the_loop_scaled_for_the_scheduler(pipe) -> None:
    """Latents passed in are the starting noise: times the scheduler's initial sigma (not 1 for
    Euler), then scaled for the model's input, as the first UNet call must show."""
    euler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    shape = (1, pipe.unet.config.in_channels, HEIGHT // pipe.vae_scale_factor, WIDTH // pipe.vae_scale_factor)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(5))
    calls = record_inputs(pipe.unet)
    pipe(**call_kwargs(1, latents=noise.clone(), num_inference_steps=2), scheduler=euler)
    reference = EulerDiscreteScheduler.from_config(pipe.scheduler.config)
    reference.set_timesteps(2)
    expected = reference.scale_model_input(noise * reference.init_noise_sigma, reference.timesteps[0])
    assert reference.init_noise_sigma > 1.5  # so that multiplying and dividing by it differ
    for row in calls[0]["args"][0]:  # the unconditional and the conditional row start alike
        torch.testing.assert_close(row, expected[0], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"^`latents` must have shape \(1, 4, 8, 6\), got \(1, 4, 6, 8\)\.$"):
        pipe(**call_kwargs(1, latents=noise.transpose(2, 3)))


def test_ddim_eta_adds_noise_drawn_from_the_generator(pipe) -> None:
    """eta > 0 reaches DDIM's step (the image changes) and so does the generator (the same seed
    gives the same image again)."""
    plain, noisy, again = (pipe(**call_kwargs(1, eta=eta, seed=3), scheduler=DDIMScheduler.from_config(pipe.scheduler.config))[0]
                           for eta in (0.0, 1.0, 1.0))  # fmt: skip
    assert np.abs(noisy - plain).max() > 1e-2
    np.testing.assert_array_equal(noisy, again)
