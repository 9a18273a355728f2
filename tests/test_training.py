"""train.py on a tiny config: the loss falls, the model saved loads in the released layout, and a
resumed run continues exactly as an uninterrupted one."""

import csv
import shutil
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, DDPMScheduler

from parts2whole import Parts2WholePipeline
from parts2whole.labels import MAX_PARTS
from parts2whole.runtime import DEFAULTS_FILE, SCHEDULERS, make_scheduler
from parts2whole.synthetic import write_dataset
from parts2whole.training.components import scratch_components
from parts2whole.training.config import ModelConfig, TrainConfig
from parts2whole.training.data import PARSING_CLASSES, PartsDataset, collate
from parts2whole.training.loop import DETERMINISTIC_LOG_VARIANCE, StepBatches, initial_pipeline, make_accelerator, train, train_vae
from parts2whole.training.step import (
    FrozenEncoders,
    TrainedParts,
    class_weight_table,
    draw_conditions,
    draw_timesteps,
    latent_loss_weights,
    pack_image_tokens,
    timestep_draw_weights,
    training_loss,
    weighted_mse,
)

TINY_MODEL = ModelConfig(
    unet_channels=[8, 16], attention_heads=2, cross_attention_dim=16, text_layers=1, vision_layers=1,
    clip_image_size=16, clip_patch_size=8, pose_guider_channels=[4, 8], vae_channels=[8, 8],
)  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(root, people=10, seed=5, size=(24, 32), workers=1)
    return root


def tiny_config(dataset: Path, output_dir: Path, **overrides) -> TrainConfig:
    settings = dict(
        data=str(dataset), output_dir=str(output_dir), model=TINY_MODEL, height=32, width=24, learning_rate=2e-3,
        batch_size=2, max_steps=4, mixed_precision="no", num_workers=0, log_every=1, checkpoint_every=2,
        validate_every=0, validation_steps=2, validation_guidance=2.0, vae_steps=3, vae_decoder_steps=2, vae_batch_size=2,
        ema_decay=0.9,
    )  # fmt: skip
    return TrainConfig(**{**settings, **overrides})


def logged_losses(output_dir: Path) -> dict[int, float]:
    with (output_dir / "log.csv").open() as file:
        return {int(row["step"]): float(row["loss"]) for row in csv.DictReader(file)}


def test_training_saves_a_model_that_loads_and_generates(dataset, tmp_path):
    final = train(tiny_config(dataset, tmp_path / "run"))
    pipe = Parts2WholePipeline.from_pretrained(final)
    assert (final / DEFAULTS_FILE).is_file() and (tmp_path / "run" / "vae" / "config.json").is_file()
    assert pipe.vae.config.scaling_factor != 0.18215  # set from the trained VAE's latents
    whole, tuned = (AutoencoderKL.from_pretrained(tmp_path / "run" / name).state_dict() for name in ("vae", "vae_decoder"))
    assert all(torch.equal(whole[key], tuned[key]) for key in whole if key.startswith(("encoder.", "quant_conv.")))
    assert not all(torch.equal(whole[key], tuned[key]) for key in whole if key.startswith("decoder."))
    assert all(torch.equal(tensor, tuned[key]) for key, tensor in pipe.vae.state_dict().items())  # the model decodes with it
    sample = PartsDataset(dataset, "test", (32, 24)).samples[0]
    image = pipe(
        appearance={label: str(path) for label, path in sample.appearance.items()},
        structure={"densepose": str(sample.densepose)}, height=32, width=24, num_inference_steps=2,
    ).images[0]  # fmt: skip
    assert image.size == (24, 32)


def test_a_deterministic_vae_keeps_its_spread_fixed_through_training(dataset, tmp_path):
    """`vae_deterministic`: the posterior's log-variance is fixed (zero weights, a bias of
    DETERMINISTIC_LOG_VARIANCE) and stays so through training: the spread stays tiny."""
    config = tiny_config(dataset, tmp_path / "run", vae_deterministic=True, vae_decoder_steps=0,
                         model=ModelConfig(**{**TINY_MODEL.__dict__, "vae_latent_channels": 4}))  # fmt: skip
    vae = train_vae(config, make_accelerator(config))
    weight, bias = vae.quant_conv.weight, vae.quant_conv.bias
    assert weight[4:].abs().max() == 0 and torch.allclose(bias[4:], torch.full((4,), DETERMINISTIC_LOG_VARIANCE), atol=1e-3)
    pixels = PartsDataset(dataset, "test", (32, 24))[0]["pixels"][None]
    assert vae.encode(pixels).latent_dist.std.max() < 0.003


def test_the_vae_stage_continues_a_saved_vae(dataset, tmp_path):
    """`vae_init`: the stage starts from the saved VAE's weights (one step at a tiny rate moves them
    only a little) rather than from a new one."""
    first_config = tiny_config(dataset, tmp_path / "first", vae_decoder_steps=0)
    first = train_vae(first_config, make_accelerator(first_config))
    config = tiny_config(dataset, tmp_path / "second", vae_init=str(tmp_path / "first" / "vae"), vae_steps=1, vae_decoder_steps=0,
                         vae_learning_rate=1e-6)  # fmt: skip
    continued = train_vae(config, make_accelerator(config))
    changes = [(continued.state_dict()[key] - tensor).abs().max() for key, tensor in first.state_dict().items()]
    assert max(changes) < 1e-3 and max(changes) > 0


def test_resumed_run_continues_as_an_uninterrupted_one(dataset, tmp_path):
    """Stopped at step 4 with its last checkpoint at step 2: the resumed run logs steps 3-4 again,
    with the same losses, in place of the first attempt's rows (no step twice in log.csv)."""
    whole = tiny_config(dataset, tmp_path / "whole", max_steps=6)
    train(whole)
    first = tiny_config(dataset, tmp_path / "parts", max_steps=4)
    train(first)
    shutil.rmtree(tmp_path / "parts" / "checkpoints" / "step-000004")
    train(tiny_config(dataset, tmp_path / "parts", max_steps=6), resume="latest")
    with (tmp_path / "parts" / "log.csv").open() as file:
        steps = [int(row["step"]) for row in csv.DictReader(file)]
    assert steps == [1, 2, 3, 4, 5, 6]
    expected, resumed = logged_losses(tmp_path / "whole"), logged_losses(tmp_path / "parts")
    for step in steps:
        assert resumed[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-7)


def step_inputs(config: TrainConfig) -> tuple[TrainedParts, FrozenEncoders, DDPMScheduler, dict]:
    """A new tiny model, its frozen encoders, its noise schedule and a batch of two training samples."""
    pipe = initial_pipeline(config, make_accelerator(config))
    frozen = FrozenEncoders(pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.image_encoder, torch.device("cpu"))
    model = TrainedParts(pipe.unet, pipe.reference_unet, pipe.pose_guider)
    data = PartsDataset(config.data, "train", (config.height, config.width), clip_processor=pipe.feature_extractor)
    return model, frozen, DDPMScheduler.from_config(pipe.scheduler.config), collate([data[i] for i in range(2)])


def test_cached_reference_encodings_are_the_plain_ones_each_made_once_per_sample(dataset, tmp_path):
    """The reference cache gives what encoding every step gives, and encodes only the references of
    samples it has not seen (batch (1, 2) after (0, 1): sample 2's alone)."""
    config = tiny_config(dataset, tmp_path / "fixed", vae_steps=0)
    pipe = initial_pipeline(config, make_accelerator(config))
    encoders = (pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.image_encoder, torch.device("cpu"))
    frozen, cached = FrozenEncoders(*encoders), FrozenEncoders(*encoders, cache_references=True)
    data = PartsDataset(config.data, "train", (config.height, config.width), clip_processor=pipe.feature_extractor)
    first, second = collate([data[0], data[1]]), collate([data[1], data[2]])
    encoded = []
    handle = frozen.vae.encoder.register_forward_hook(lambda module, args, output: encoded.append(args[0].shape[0]))
    try:
        for batch in (first, second):
            conditions = draw_conditions(batch["present"], 0.0, 0.0, 0.0, generator=torch.Generator().manual_seed(0))
            plain = frozen.encode(batch, conditions, torch.Generator().manual_seed(1))
            reused = cached.encode(batch, conditions, torch.Generator().manual_seed(1))
            for key in plain:
                torch.testing.assert_close(reused[key], plain[key])
    finally:
        handle.remove()
    parts = [int(data[index]["present"].sum()) for index in range(3)]
    assert encoded == [2, parts[0] + parts[1], 2, parts[0] + parts[1], 2, parts[1] + parts[2], 2, parts[2]]


@pytest.mark.parametrize("zero_terminal_snr", [False, True])
def test_loss_falls_on_a_fixed_batch(dataset, tmp_path, zero_terminal_snr):
    """A few dozen steps on the same batch must lower its loss at fixed noise and timesteps."""
    model_config = ModelConfig(**{**TINY_MODEL.__dict__, "zero_terminal_snr": zero_terminal_snr})
    model, frozen, scheduler, batch = step_inputs(tiny_config(dataset, tmp_path / "fixed", vae_steps=0, model=model_config))

    def loss() -> torch.Tensor:
        return training_loss(model, frozen, scheduler, batch, (0.0, 0.0, 0.0), torch.Generator().manual_seed(1))

    with torch.no_grad():
        before = loss().item()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(25):
        optimizer.zero_grad()
        loss().backward()
        optimizer.step()
    with torch.no_grad():
        assert loss().item() < 0.7 * before


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_zero_terminal_snr_schedule_starts_from_pure_noise(name):
    """The last training timestep keeps no trace of the image, and sampling starts there."""
    config = scratch_components(ModelConfig(**{**TINY_MODEL.__dict__, "zero_terminal_snr": True}))["scheduler"].config
    assert DDPMScheduler.from_config(config).alphas_cumprod[-1] == 0 and config.prediction_type == "v_prediction"
    scheduler = make_scheduler(name, config)
    scheduler.set_timesteps(5)
    assert scheduler.timesteps[0] == 999
    sample = torch.randn(1, 4, 4, 4)
    for t in scheduler.timesteps:
        sample = scheduler.step(torch.zeros_like(sample), t, sample).prev_sample
    assert torch.isfinite(sample).all()


def test_dropouts_do_what_they_claim():
    present = torch.ones(4000, MAX_PARTS, dtype=torch.bool)
    present[:, 4] = False  # no whole-body garment where upper and lower are given
    conditions = draw_conditions(present, 0.1, 0.2, 0.5, torch.Generator().manual_seed(0))
    nothing = ~conditions.present.any(1)
    unconditional = nothing & ~conditions.use_caption
    assert 0.08 < unconditional.float().mean() < 0.12 + 0.05  # cfg 0.1, plus caption-dropped "all references" rows
    assert (conditions.present <= present).all()  # never a part the sample does not have
    pose_dropped = conditions.use_pose == 0
    assert 0.05 < pose_dropped.float().mean() < 0.085  # 0.2 / 3
    assert (conditions.present[pose_dropped] == present[pose_dropped]).all() and conditions.use_caption[pose_dropped].float().mean() > 0.4
    some_dropped = conditions.present.any(1) & ~conditions.present[:, [0, 1, 2, 3, 5]].all(1)
    assert 0.05 < some_dropped.float().mean() < 0.085


def test_image_tokens_are_packed_as_inference_lays_them_out():
    embeds = torch.arange(2 * MAX_PARTS, dtype=torch.float32).view(2, MAX_PARTS, 1).expand(-1, -1, 3)
    present = torch.tensor([[False, True, False, False, False, True], [False] * MAX_PARTS])
    tokens = pack_image_tokens(embeds, present)
    assert tokens[0, :, 0].tolist() == [1, 5, 0, 0, 0, 0] and tokens[0, 2:].abs().sum() == 0
    assert tokens[1].abs().sum() == 0


def test_step_batches_resume_where_they_left_off():
    whole = iter(StepBatches(size=7, batch_size=3, seed=1, start=0))
    batches = [next(whole) for _ in range(6)]
    resumed = iter(StepBatches(size=7, batch_size=3, seed=1, start=4))
    assert [next(resumed), next(resumed)] == batches[4:]
    two_processes = [iter(StepBatches(7, 3, 1, start=0, rank=rank, world=2)) for rank in (0, 1)]
    assert next(two_processes[0]) + next(two_processes[1]) == batches[0] + batches[1]


def test_step_batches_visit_every_sample_once_a_pass_and_name_the_pass():
    """Keys (index, epoch): the dataset draws a new crop for each pass, not the same crop forever."""
    batches = iter(StepBatches(size=6, batch_size=3, seed=2, start=0))
    keys = [key for _ in range(4) for key in next(batches)]
    assert sorted(keys[:6]) == [(i, 0) for i in range(6)] and sorted(keys[6:]) == [(i, 1) for i in range(6)]


def fine_tuned(checkpoint: Path, tmp_path: Path, **overrides) -> Parts2WholePipeline:
    """Two steps of fine-tuning `checkpoint` on four synthetic people at the test checkpoint's size."""
    from parts2whole.testing.inputs import HEIGHT, WIDTH

    root = tmp_path / "data"
    write_dataset(root, people=4, seed=3, size=(WIDTH, HEIGHT), workers=1, progress=False)
    config = TrainConfig(
        data=str(root), output_dir=str(tmp_path / "run"), pretrained=str(checkpoint), height=HEIGHT,
        width=WIDTH, batch_size=2, max_steps=2, mixed_precision="no", num_workers=0, learning_rate=1e-3,
        checkpoint_every=2, validate_every=0, validation_steps=2, **overrides,
    )  # fmt: skip
    return Parts2WholePipeline.from_pretrained(train(config))


def test_fine_tuning_starts_from_a_released_layout_checkpoint(released_checkpoint, tmp_path):
    """The authors' layout in, the same layout out, the frozen parts unchanged and the trained ones moved."""
    start = Parts2WholePipeline.from_pretrained(released_checkpoint[0])
    tuned = fine_tuned(released_checkpoint[0], tmp_path)
    for name in ("vae", "text_encoder", "image_encoder"):
        before, after = getattr(start, name).state_dict(), getattr(tuned, name).state_dict()
        assert all(torch.equal(before[key], after[key]) for key in before)
    for name in ("unet", "pose_guider"):
        before, after = getattr(start, name).state_dict(), getattr(tuned, name).state_dict()
        assert not all(torch.equal(before[key], after[key]) for key in before)


def test_fine_tuning_with_vae_init_fits_the_checkpoint_to_that_vae(released_checkpoint, tmp_path):
    """`pretrained` and `vae_init` together: the checkpoint's UNets are trained on, and saved with,
    the given VAE (how the mini model moves to a better VAE), not the checkpoint's own."""
    better = AutoencoderKL.from_pretrained(released_checkpoint[0] / "vae")
    with torch.no_grad():
        for parameter in better.parameters():
            parameter.add_(0.01)
    better.save_pretrained(tmp_path / "better_vae")
    own = AutoencoderKL.from_pretrained(released_checkpoint[0] / "vae").state_dict()
    tuned = fine_tuned(released_checkpoint[0], tmp_path, vae_init=str(tmp_path / "better_vae")).vae.state_dict()
    assert all(torch.equal(tensor, tuned[key]) for key, tensor in better.state_dict().items())
    assert not all(torch.equal(tensor, tuned[key]) for key, tensor in own.items())


def test_a_cosine_rate_decays_to_zero_at_the_last_step(dataset, tmp_path):
    train(tiny_config(dataset, tmp_path / "run", lr_scheduler="cosine", vae_steps=0, vae_decoder_steps=0))
    with (tmp_path / "run" / "log.csv").open() as file:
        rates = [float(row["lr"]) for row in csv.DictReader(file)]
    assert len(rates) == 4 and rates == sorted(rates, reverse=True) and rates[0] < 2e-3 and rates[-1] == pytest.approx(0.0, abs=1e-12)


def test_a_time_limit_ends_the_main_stage_saved(dataset, tmp_path):
    """`max_minutes`: past the limit the run stops at the step it is on, with a checkpoint and the final model."""
    final = train(tiny_config(dataset, tmp_path / "run", max_minutes=0.0, vae_steps=0, vae_decoder_steps=0))
    assert (final / "model_index.json").is_file()
    assert [folder.name for folder in (tmp_path / "run" / "checkpoints").iterdir()] == ["step-000001"]
    assert list(logged_losses(tmp_path / "run")) == [1]


def test_settings_read_numbers_as_yaml_writes_them_and_refuse_other_values(tmp_path):
    """YAML reads 5e-4 (no dot) as a string: it is the number it spells. Anything else that is not a
    number, and unknown names, are refused with a sentence (train.py prints it, no stack trace)."""
    config = TrainConfig.load(None, ["learning_rate=5e-4", "max_steps=5e3", "ema_decay=null", "model={vae_latent_channels: 8}"])
    assert config.learning_rate == 5e-4 and config.max_steps == 5000 and isinstance(config.max_steps, int) and config.ema_decay is None
    assert config.model.vae_latent_channels == 8
    for override, message in (
        ("learning_rate=fast", "The setting learning_rate must be a number, got 'fast'."),
        ("max_steps=2.5e0", "The setting max_steps must be a whole number, got '2.5e0'."),
        ("learning_rate=nan", "The setting learning_rate must be a number, got 'nan'."),
        ("model={vae_latent_channels: many}", "The setting vae_latent_channels must be a whole number, got 'many'."),
        ("learning_rte=1", "Unknown training setting(s) ['learning_rte']"),
    ):
        with pytest.raises(ValueError) as error:
            TrainConfig.load(None, [override])
        assert str(error.value).startswith(message)


def test_class_weights_weigh_each_latent_cell_by_the_classes_it_covers():
    """A cell's weight is the mean of its pixels' class weights; unnamed classes weigh 1; unknown
    names and weights that are not positive numbers are refused with a sentence."""
    table = class_weight_table({"face": 10, "shoes": 4.5})
    assert table.tolist() == [1.0, 1.0, 10.0, 1.0, 1.0, 1.0, 4.5, 1.0]
    parsing = torch.zeros(1, 4, 8, dtype=torch.int64)  # two 4 x 4 cells at a factor of 4
    parsing[0, :2, :4] = PARSING_CLASSES.index("face")  # half of the first cell
    parsing[0, :, 4:] = PARSING_CLASSES.index("shoes")  # all of the second
    assert latent_loss_weights(parsing, table, (1, 2)).flatten().tolist() == [5.5, 4.5]
    for weights, message in (
        ({"hat": 2}, "loss_weights names unknown parsing class(es) ['hat']"),
        ({"face": 0}, "loss_weights['face'] must be a positive number, got 0."),
        ({"face": True}, "loss_weights['face'] must be a positive number, got True."),
        ({"face": "10"}, "loss_weights['face'] must be a positive number, got '10'."),
    ):
        with pytest.raises(ValueError) as error:
            class_weight_table(weights)
        assert str(error.value).startswith(message)


def test_weighted_mse_weighs_each_cell_and_divides_by_the_weights():
    prediction, target = torch.zeros(1, 2, 1, 2), torch.tensor([[[[1.0, 3.0]], [[1.0, 3.0]]]])
    weights = torch.tensor([[[[1.0, 3.0]]]])
    assert weighted_mse(prediction, target, weights).item() == pytest.approx((1 * 1 + 3 * 9) / (1 + 3))
    assert weighted_mse(prediction, target, torch.ones(1, 1, 1, 2)).item() == pytest.approx(5.0)


def test_the_training_loss_is_the_plain_one_at_equal_weights_and_changes_with_the_person_weighted(dataset, tmp_path):
    model, frozen, scheduler, batch = step_inputs(tiny_config(dataset, tmp_path / "fixed", vae_steps=0))

    def loss(weights: dict[str, float] | None) -> float:
        table = class_weight_table(weights) if weights is not None else None
        with torch.no_grad():
            return training_loss(model, frozen, scheduler, batch, (0.0, 0.0, 0.0), torch.Generator().manual_seed(1), table).item()

    plain = loss(None)
    assert loss({name: 7.0 for name in PARSING_CLASSES}) == pytest.approx(plain, rel=1e-6)
    assert loss({name: 20.0 for name in PARSING_CLASSES[1:]}) != pytest.approx(plain, rel=1e-3)


def test_the_noisiest_timesteps_are_drawn_as_often_as_asked_and_the_uniform_draw_is_unchanged():
    """A portion of 0.5 at 3 times the rate puts three draws in four in the noisier half; without a
    bias the draw is torch.randint's, so runs and checkpoints made before the setting are unchanged."""
    assert timestep_draw_weights(1000, 0.0, 3.0) is None and timestep_draw_weights(1000, 0.5, 1.0) is None
    weights = timestep_draw_weights(1000, 0.5, 3.0)
    assert weights[:500].unique().tolist() == [1.0] and weights[500:].unique().tolist() == [3.0]
    drawn = draw_timesteps(20000, 1000, weights, torch.Generator().manual_seed(0))
    assert drawn.min() >= 0 and drawn.max() <= 999
    assert (drawn >= 500).float().mean().item() == pytest.approx(0.75, abs=0.01)
    uniform = draw_timesteps(8, 1000, None, torch.Generator().manual_seed(3))
    assert torch.equal(uniform, torch.randint(0, 1000, (8,), generator=torch.Generator().manual_seed(3)))
    for portion, multiplier, message in ((1.5, 3.0, "high_noise_portion must be between 0 and 1, got 1.5."),
                                         (0.5, 0.0, "high_noise_multiplier must be a positive number, got 0.0.")):  # fmt: skip
        with pytest.raises(ValueError) as error:
            timestep_draw_weights(1000, portion, multiplier)
        assert str(error.value) == message


def test_train_refuses_a_timestep_bias_out_of_range(dataset, tmp_path):
    with pytest.raises(ValueError, match="high_noise_portion must be between 0 and 1, got 2"):
        train(tiny_config(dataset, tmp_path / "run", high_noise_portion=2))


def test_loss_weights_need_parsing_maps(dataset, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(dataset, bare, ignore=shutil.ignore_patterns("parsing"))
    with pytest.raises(ValueError, match="has no parsing/ folder"):
        train(tiny_config(bare, tmp_path / "run", loss_weights={"face": 4}))
