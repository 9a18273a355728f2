"""`train.py`'s work: the VAE stage (models from scratch), then the main stage, with accelerate
(one process on a CPU, or `accelerate launch` over GPUs and machines), mixed precision, gradient
accumulation and clipping, EMA, resumable checkpoints, a CSV log and validation images."""

import copy
import csv
import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator, DistributedDataParallelKwargs
from accelerate.utils import broadcast, set_seed
from diffusers import AutoencoderKL, DDPMScheduler
from diffusers.optimization import get_scheduler
from diffusers.training_utils import EMAModel
from PIL import Image, ImageOps
from torch.nn import functional as F
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from ..pipeline import Parts2WholePipeline
from ..runtime import DEFAULTS_FILE
from .components import scratch_components
from .config import TrainConfig
from .data import PartsDataset, collate, parsing_maps_folder
from .step import FrozenEncoders, TrainedParts, check_timestep_bias, class_weight_table, timestep_draw_weights, training_loss


class StepBatches(Sampler[list[tuple[int, int]]]):
    """The batches of micro-steps `start`, `start + 1`, ... for this process, as dataset keys
    (index, epoch): each pass over the data draws new crops.

    Pass e over the data is a permutation drawn from (seed, e), and each process takes its slice
    of every global batch, so a micro-step always gets the same samples: a resumed run sees what an
    uninterrupted one would have.
    """

    def __init__(self, size: int, batch_size: int, seed: int, start: int, rank: int = 0, world: int = 1) -> None:
        self.size, self.batch_size, self.seed, self.start, self.rank, self.world = size, batch_size, seed, start, rank, world
        self._orders: dict[int, np.ndarray] = {}

    def key(self, position: int) -> tuple[int, int]:
        epoch, offset = divmod(position, self.size)
        if epoch not in self._orders:
            self._orders = {epoch: np.random.default_rng([self.seed, epoch]).permutation(self.size)}
        return int(self._orders[epoch][offset]), epoch

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        micro_step = self.start
        while True:
            first = (micro_step * self.world + self.rank) * self.batch_size
            yield [self.key(first + i) for i in range(self.batch_size)]
            micro_step += 1


def step_generator(seed: int, micro_step: int, rank: int) -> torch.Generator:
    """The randomness of one micro-step (dropouts, noise, timesteps), whatever ran before it."""
    return torch.Generator().manual_seed(int(np.random.default_rng([seed, micro_step, rank]).integers(2**62)))


def make_accelerator(config: TrainConfig) -> Accelerator:
    # The appearance encoder's tail never runs (docs/method.md §3), and a batch whose parts are all dropped
    # leaves it unused: DDP must not wait for their gradients.
    return Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )


def training_data(
    config: TrainConfig, clip_processor, start: int, accelerator: Accelerator, batch_size: int, with_references: bool = True
) -> Iterator[dict]:
    dataset = PartsDataset(
        config.data, "train", (config.height, config.width), random_crop=True, crop_scale=tuple(config.crop_scale),
        seed=config.seed, clip_processor=clip_processor, with_references=with_references,
    )  # fmt: skip
    sampler = StepBatches(len(dataset), batch_size, config.seed, start, accelerator.process_index, accelerator.num_processes)
    loader = DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=config.num_workers)
    return iter(loader)


# ------------------------------------------------------------------------------------ VAE stage


DETERMINISTIC_LOG_VARIANCE = -12.0
"""The fixed log-variance of a deterministic VAE's posterior: a spread of 0.0025, next to latents of
spread about 1, so sampling it (as the main stage does) changes next to nothing."""


def make_deterministic(vae: AutoencoderKL) -> None:
    """Fix the posterior's log-variance (the second half of `quant_conv`'s outputs) to
    `DETERMINISTIC_LOG_VARIANCE`: with the mean decoded in training it gets no gradient and stays so."""
    latent_channels = vae.config.latent_channels
    with torch.no_grad():
        vae.quant_conv.weight[latent_channels:] = 0.0
        vae.quant_conv.bias[latent_channels:] = DETERMINISTIC_LOG_VARIANCE


class VaeObjective(torch.nn.Module):
    """A VAE's reconstruction and KL terms from one forward, so that DDP sees the whole computation.
    With `decoder_only` the encoder runs without gradients: its latent space stays as it is.
    With `deterministic` the posterior mean is decoded (an autoencoder): no latent channel is
    drowned in sampling noise while the decoder learns to use it."""

    def __init__(self, vae: AutoencoderKL, decoder_only: bool, deterministic: bool = False) -> None:
        super().__init__()
        self.vae, self.decoder_only, self.deterministic = vae, decoder_only, deterministic

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.decoder_only):
            posterior = self.vae.encode(images).latent_dist
        latents = posterior.mean if self.deterministic else posterior.sample()
        reconstruction = self.vae.decode(latents).sample
        return F.mse_loss(reconstruction.float(), images.float()), posterior.kl().mean()


def vae_stage(config: TrainConfig, accelerator: Accelerator, vae: AutoencoderKL, decoder_only: bool) -> AutoencoderKL:
    """Train `vae` (or its decoder alone) on the training targets; logs to vae_log.csv / vae_decoder_log.csv."""
    steps = config.vae_decoder_steps if decoder_only else config.vae_steps
    if decoder_only:
        vae.encoder.requires_grad_(False)
        vae.quant_conv.requires_grad_(False)
    objective = VaeObjective(vae.train(), decoder_only, config.vae_deterministic)
    trained = [parameter for parameter in objective.parameters() if parameter.requires_grad]
    optimizer = torch.optim.AdamW(trained, lr=config.vae_learning_rate)
    # Cosine decay to zero: a stage this short ends far better settled than at a constant rate.
    lr_scheduler = get_scheduler("cosine", optimizer, num_warmup_steps=min(100, steps // 10), num_training_steps=steps)
    objective, optimizer, lr_scheduler = accelerator.prepare(objective, optimizer, lr_scheduler)
    batches = training_data(config, None, 0, accelerator, config.vae_batch_size, with_references=False)
    name = "vae_decoder" if decoder_only else "vae"
    log = CsvLog(Path(config.output_dir) / f"{name}_log.csv", ("step", "loss", "reconstruction", "kl"))
    for step in tqdm(range(steps), desc=name, disable=not accelerator.is_main_process):
        with accelerator.autocast():
            reconstruction, kl = objective(next(batches)["pixels"].to(accelerator.device))
            kl_weight = 0.0 if decoder_only or config.vae_deterministic else config.vae_kl_weight
            loss = reconstruction + kl_weight * kl
        accelerator.backward(loss)
        optimizer.step()
        lr_scheduler.step()
        optimizer.zero_grad()
        if accelerator.is_main_process and step % config.log_every == 0:
            log.write(step, loss.item(), reconstruction.item(), kl.item())
    vae = accelerator.unwrap_model(objective).vae.eval().requires_grad_(True)
    accelerator.free_memory()  # forget this stage's model and optimizer: checkpoints hold the main stage's only
    return vae


def train_vae(config: TrainConfig, accelerator: Accelerator) -> AutoencoderKL:
    """The model's own VAE (new, or continued from `vae_init`, else from the `pretrained`
    checkpoint's): trained whole on the training targets (`vae_steps`), its `scaling_factor` set
    so that its latents have unit spread (as 0.18215 does for Stable Diffusion's), then its
    decoder alone trained further (`vae_decoder_steps`), which leaves the latents unchanged.
    A stage whose result is saved in the output folder is not run again."""
    output_dir = Path(config.output_dir)
    folder = output_dir / "vae"
    if (folder / "config.json").is_file():
        vae = AutoencoderKL.from_pretrained(folder)
    else:
        start = config.vae_init or (str(Path(config.pretrained) / "vae") if config.pretrained else None)
        if start:
            vae = AutoencoderKL.from_pretrained(start)
        else:
            vae = scratch_components(config.model)["vae"]
            if config.vae_deterministic:
                make_deterministic(vae)
        vae = vae_stage(config, accelerator, vae, decoder_only=False)
        batches = training_data(config, None, 0, accelerator, config.vae_batch_size, with_references=False)
        with torch.no_grad():
            latents = [vae.encode(next(batches)["pixels"].to(accelerator.device)).latent_dist.mode() for _ in range(8)]
        vae.register_to_config(scaling_factor=float(1.0 / torch.cat(latents).std()))
        if accelerator.is_main_process:
            vae.save_pretrained(folder)
    if config.vae_decoder_steps:
        tuned = output_dir / "vae_decoder"
        if (tuned / "config.json").is_file():
            vae = AutoencoderKL.from_pretrained(tuned)
        else:
            vae = vae_stage(config, accelerator, vae, decoder_only=True)
            if accelerator.is_main_process:
                vae.save_pretrained(tuned)
    accelerator.wait_for_everyone()
    return vae.cpu()


# ----------------------------------------------------------------------------------- main stage


class CsvLog:
    def __init__(self, path: Path, columns: tuple[str, ...]) -> None:
        self.path = path
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(",".join(columns) + "\n")

    def write(self, *values) -> None:
        with self.path.open("a", newline="") as file:
            csv.writer(file).writerow([f"{v:.6g}" if isinstance(v, float) else v for v in values])

    def drop_after(self, step: int) -> None:
        """Forget the rows past `step`: a run resumed from there logs them again."""
        with self.path.open(newline="") as file:
            rows = list(csv.reader(file))
        kept = [rows[0], *(row for row in rows[1:] if int(row[0]) <= step)]
        with self.path.open("w", newline="") as file:
            csv.writer(file).writerows(kept)


def initial_pipeline(config: TrainConfig, accelerator: Accelerator) -> Parts2WholePipeline:
    """The released-layout checkpoint to fine-tune, or a new model. Either way a VAE stage
    (`vae_steps`) or a saved VAE (`vae_init`) replaces the VAE it would have: that is how a
    checkpoint's UNets are fitted to a better VAE."""
    if config.vae_steps:
        vae = train_vae(config, accelerator)
    else:
        vae = AutoencoderKL.from_pretrained(config.vae_init) if config.vae_init else None
    if config.pretrained:
        return Parts2WholePipeline.from_pretrained(config.pretrained, **({"vae": vae} if vae is not None else {}))
    return Parts2WholePipeline(**scratch_components(config.model, vae))


def exported_pipeline(pipe: Parts2WholePipeline, model: TrainedParts, ema: EMAModel | None) -> Parts2WholePipeline:
    """A pipeline with copies of the trained models (their EMA weights when kept), in float32."""
    parameters = list(model.parameters())
    if ema is not None:
        ema.store(parameters)
        ema.copy_to(parameters)
    trained = {name: copy.deepcopy(getattr(model, name)).float().cpu() for name in ("unet", "reference_unet", "pose_guider")}
    if ema is not None:
        ema.restore(parameters)
    frozen = {name: getattr(pipe, name) for name in ("vae", "text_encoder", "tokenizer", "image_encoder", "feature_extractor", "scheduler")}
    frozen = {name: part.float().cpu() if isinstance(part, torch.nn.Module) else part for name, part in frozen.items()}
    exported = Parts2WholePipeline(**frozen, **trained)
    exported.set_progress_bar_config(disable=True)
    return exported


def save_model(pipe: Parts2WholePipeline, folder: Path, config: TrainConfig) -> None:
    """The released layout, plus the settings the model is meant to be sampled with."""
    pipe.save_pretrained(folder)
    defaults = {
        "height": config.height, "width": config.width, "steps": config.validation_steps,
        "guidance_scale": config.validation_guidance, "scheduler": "ddim",
    }  # fmt: skip
    (folder / DEFAULTS_FILE).write_text(json.dumps(defaults, indent=2) + "\n")


def validation_sheet(pipe: Parts2WholePipeline, config: TrainConfig) -> Image.Image:
    """Rows of held-out people: references | pose | generated | ground truth."""
    split = "test" if (Path(config.data) / "test.jsonl").exists() else "train"
    dataset = PartsDataset(config.data, split, (config.height, config.width), random_crop=False)
    rows = []
    for sample in dataset.samples[: config.validation_people]:
        image = pipe(
            appearance={label: str(path) for label, path in sample.appearance.items()},
            mask={label: str(path) for label, path in sample.mask.items()},
            structure={"densepose": str(sample.densepose)}, height=config.height, width=config.width,
            num_inference_steps=config.validation_steps, guidance_scale=config.validation_guidance,
            generator=torch.Generator().manual_seed(0),
        ).images[0]  # fmt: skip
        size = (config.width, config.height)
        tiles = [ImageOps.pad(Image.open(path).convert("RGB"), size, color=(255, 255, 255)) for path in sample.appearance.values()]
        tiles += [Image.open(sample.densepose).convert("RGB").resize(size), image, Image.open(sample.target).convert("RGB").resize(size)]
        rows.append(tiles)
    columns = max(len(row) for row in rows)
    sheet = Image.new("RGB", (columns * config.width, len(rows) * config.height), (255, 255, 255))
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            sheet.paste(tile, ((columns - len(row) + c) * config.width, r * config.height))
    return sheet


def latest_checkpoint(output_dir: Path) -> Path | None:
    found = sorted((output_dir / "checkpoints").glob("step-*"))
    return found[-1] if found else None


def train(config: TrainConfig, resume: str | None = None) -> Path:
    """Run (or resume) training; returns the folder of the final model in the released layout."""
    class_weights = class_weight_table(config.loss_weights) if config.loss_weights else None
    if class_weights is not None and parsing_maps_folder(Path(config.data)) is None:
        raise ValueError(f"loss_weights weighs the loss by the targets' parsing maps, and {config.data} has no parsing/ folder.")
    check_timestep_bias(config.high_noise_portion, config.high_noise_multiplier)
    accelerator = make_accelerator(config)
    set_seed(config.seed)
    output_dir = Path(config.output_dir)
    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / "config.json").write_text(json.dumps(config.to_dict(), indent=2) + "\n")
    pipe = initial_pipeline(config, accelerator)
    frozen = FrozenEncoders(
        pipe.vae, pipe.text_encoder, pipe.tokenizer, pipe.image_encoder, accelerator.device, config.cache_references
    )
    model = TrainedParts(pipe.unet, pipe.reference_unet, pipe.pose_guider).train()
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)
    timestep_weights = timestep_draw_weights(
        noise_scheduler.config.num_train_timesteps, config.high_noise_portion, config.high_noise_multiplier
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.adam_weight_decay)
    # Accelerate steps a prepared scheduler once per process for every optimizer step, hence the factor.
    lr_scheduler = get_scheduler(
        config.lr_scheduler,
        optimizer,
        num_warmup_steps=config.lr_warmup_steps * accelerator.num_processes,
        num_training_steps=config.max_steps * accelerator.num_processes,
    )
    model, optimizer, lr_scheduler = accelerator.prepare(model, optimizer, lr_scheduler)
    ema = None
    if config.ema_decay:
        ema = EMAModel(accelerator.unwrap_model(model).parameters(), decay=config.ema_decay)
        ema.to(accelerator.device)
        accelerator.register_for_checkpointing(ema)

    step, seconds = 0, 0.0
    checkpoint = latest_checkpoint(output_dir) if resume == "latest" else Path(resume) if resume else None
    if checkpoint is not None:
        accelerator.load_state(str(checkpoint))
        saved = json.loads((checkpoint / "step.json").read_text())
        step, seconds = saved["step"], saved.get("seconds", 0.0)
    accumulation = config.gradient_accumulation_steps
    batches = training_data(config, pipe.feature_extractor, step * accumulation, accelerator, config.batch_size)
    dropouts = (config.cfg_dropout, config.reference_dropout, config.caption_dropout)
    log = CsvLog(output_dir / "log.csv", ("step", "loss", "lr", "seconds"))
    if accelerator.is_main_process:
        log.drop_after(step)
    progress = tqdm(total=config.max_steps, initial=step, desc="training", disable=not accelerator.is_main_process)
    started, losses = time.time() - seconds, []
    stopping = step >= config.max_steps
    while not stopping:
        for micro in range(accumulation):
            generator = step_generator(config.seed, step * accumulation + micro, accelerator.process_index)
            with accelerator.accumulate(model), accelerator.autocast():
                loss = training_loss(
                    model, frozen, noise_scheduler, next(batches), dropouts, generator, class_weights, timestep_weights
                )
                accelerator.backward(loss)
                if accelerator.sync_gradients and config.max_grad_norm:
                    accelerator.clip_grad_norm_(model.parameters(), config.max_grad_norm)
                optimizer.step()
                lr_scheduler.step()
                optimizer.zero_grad()
            losses.append(loss.item())
        step += 1
        if ema is not None:
            ema.step(accelerator.unwrap_model(model).parameters())
        progress.update()
        progress.set_postfix(loss=f"{np.mean(losses[-20:]):.4f}")
        if accelerator.is_main_process and step % config.log_every == 0:
            log.write(step, float(np.mean(losses)), lr_scheduler.get_last_lr()[0], time.time() - started)
            losses = []
        stopping = step >= config.max_steps or out_of_time(accelerator, config.max_minutes, time.time() - started)
        if step % config.checkpoint_every == 0 or stopping:
            save_checkpoint(accelerator, output_dir, step, time.time() - started, config.keep_checkpoints)
        if accelerator.is_main_process and config.validate_every and step % config.validate_every == 0:
            exported = exported_pipeline(pipe, accelerator.unwrap_model(model), ema)
            (output_dir / "validation").mkdir(exist_ok=True)
            validation_sheet(exported, config).save(output_dir / "validation" / f"step-{step:06d}.png")
    final = output_dir / "final"
    if accelerator.is_main_process:
        save_model(exported_pipeline(pipe, accelerator.unwrap_model(model), ema), final, config)
    accelerator.wait_for_everyone()
    return final


def out_of_time(accelerator: Accelerator, max_minutes: float | None, seconds: float) -> bool:
    """Whether the main stage has trained `max_minutes`, as the main process counts: every process
    stops at the same step (a lent machine's time is bounded; the run ends saved, not killed)."""
    if max_minutes is None:
        return False
    over = torch.tensor([float(seconds >= max_minutes * 60)], device=accelerator.device)
    return bool(broadcast(over)[0])


def save_checkpoint(accelerator: Accelerator, output_dir: Path, step: int, seconds: float, keep: int) -> None:
    """Everything a resume needs (weights, optimizer, EMA, step, time trained); only the last `keep` are kept."""
    folder = output_dir / "checkpoints" / f"step-{step:06d}"
    accelerator.save_state(str(folder))
    if accelerator.is_main_process:
        (folder / "step.json").write_text(json.dumps({"step": step, "seconds": seconds}))
        for old in sorted((output_dir / "checkpoints").glob("step-*"))[:-keep]:
            shutil.rmtree(old)
    accelerator.wait_for_everyone()

