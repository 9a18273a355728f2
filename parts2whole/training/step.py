"""One training step of Parts2Whole (docs/method.md §6): frozen encoders, per-sample dropouts, the denoising
prediction of the three trained models, and the loss on epsilon (or on the velocity for a v-prediction schedule)."""

from dataclasses import dataclass

import torch
from diffusers import AutoencoderKL, DDPMScheduler
from torch import nn
from torch.nn import functional as F
from transformers import CLIPTextModel, CLIPTokenizer, CLIPVisionModelWithProjection

from ..attention import install_processors
from ..labels import MAX_PARTS, PART_LABELS
from ..pipeline import reference_latents, text_embeddings
from ..pose_guider import PoseGuider, install_pose_hook, pose_added_to_conv_in
from ..reference import ReferenceBank, capture_training_features
from .data import PARSING_CLASSES


class TrainedParts(nn.Module):
    """The denoising UNet, the appearance encoder and the pose guider as one module, so that one
    optimizer, one EMA and one DDP wrapper cover them; `forward` is a batch's noise prediction."""

    def __init__(self, unet: nn.Module, reference_unet: nn.Module, pose_guider: PoseGuider) -> None:
        super().__init__()
        self.unet, self.reference_unet, self.pose_guider = unet, reference_unet, pose_guider
        install_processors(unet, reference_unet)
        install_pose_hook(unet)

    def forward(
        self,
        noisy_latents: torch.Tensor,
        timesteps: torch.Tensor,
        context: torch.Tensor,
        ref_latents: torch.Tensor,
        label_embeds: torch.Tensor,
        ref_masks: torch.Tensor,
        present: torch.Tensor,
        pose: torch.Tensor,
        use_pose: torch.Tensor,
    ) -> torch.Tensor:
        pose_features = self.pose_guider(pose) * use_pose.view(-1, 1, 1, 1)
        with ReferenceBank().training_batch(present) as bank:
            capture_training_features(self.reference_unet, bank, ref_latents, label_embeds, ref_masks)
            with pose_added_to_conv_in(self.unet, pose_features):
                return self.unet(noisy_latents, timesteps, encoder_hidden_states=context).sample


@dataclass
class Conditions:
    """What each sample of a batch is given after docs/method.md §6's dropouts."""

    present: torch.Tensor  # (B, P) bool: the parts it attends to and has image tokens for
    use_pose: torch.Tensor  # (B,) float: 0 where the pose is dropped
    use_caption: torch.Tensor  # (B,) bool: False where the caption is replaced by the empty text


def draw_conditions(
    present: torch.Tensor, cfg_dropout: float, reference_dropout: float, caption_dropout: float, generator: torch.Generator
) -> Conditions:
    """Per sample: with `cfg_dropout` everything is dropped (empty text, no parts: the unconditional
    branch of inference; the pose stays, as inference gives it to both branches); else with
    `reference_dropout` one of the pose, all references, or each part with probability 1/2."""
    batch = present.shape[0]
    draw = torch.rand(batch, generator=generator)
    which = torch.randint(0, 3, (batch,), generator=generator)
    single = torch.rand(present.shape, generator=generator) < 0.5
    dropped_caption = torch.rand(batch, generator=generator) < caption_dropout
    unconditional = draw < cfg_dropout
    reference = ~unconditional & (draw < cfg_dropout + reference_dropout)
    keep = ~(unconditional | (reference & (which == 1)))[:, None] & ~((reference & (which == 2))[:, None] & single)
    return Conditions(
        present=present & keep,
        use_pose=(~(reference & (which == 0))).float(),
        use_caption=~(unconditional | dropped_caption),
    )


def pack_image_tokens(embeds: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """(B, P, D) per-slot CLIP embeddings -> (B, MAX_PARTS, D): each sample's present parts first,
    in slot order, then zero tokens, which is the layout inference builds (docs/method.md §4.4)."""
    tokens = embeds.new_zeros(embeds.shape[0], MAX_PARTS, embeds.shape[-1])
    rows, slots = present.nonzero(as_tuple=True)
    rank = present.cumsum(dim=1)[rows, slots] - 1
    tokens[rows, rank] = embeds[rows, slots]
    return tokens


class FrozenEncoders:
    """The VAE, text and image encoders: frozen, run without gradients; the labels' text
    embeddings are computed once. With `cache_references`, so is each reference's encoding: the
    references are never cropped or drawn anew (training/data.py), so a sample's part encodes to
    the same latents and CLIP embedding at every visit (docs/training.md, "The reference cache")."""

    def __init__(
        self,
        vae: AutoencoderKL,
        text_encoder: CLIPTextModel,
        tokenizer: CLIPTokenizer,
        image_encoder: CLIPVisionModelWithProjection,
        device: torch.device,
        cache_references: bool = False,
    ) -> None:
        self.vae, self.text_encoder, self.tokenizer, self.image_encoder = vae, text_encoder, tokenizer, image_encoder
        for model in (vae, text_encoder, image_encoder):
            model.requires_grad_(False).eval().to(device)
        self.device = device
        self.label_embeds = self.encode_text(list(PART_LABELS))
        self.reference_cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] | None = {} if cache_references else None

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> torch.Tensor:
        return text_embeddings(self.tokenizer, self.text_encoder, texts, self.device)

    @torch.no_grad()
    def encode(self, batch: dict, conditions: Conditions, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """Latents of the targets (sampled) and of the present references (posterior mean, as in
        inference), and the cross-attention context."""
        scale = self.vae.config.scaling_factor
        posterior = self.vae.encode(batch["pixels"].to(self.device)).latent_dist
        noise = torch.randn(posterior.mean.shape, generator=generator).to(self.device, posterior.mean.dtype)
        latents = (posterior.mean + posterior.std * noise) * scale
        present = conditions.present.to(self.device)
        ref_latents = latents.new_zeros(*present.shape, *latents.shape[1:])
        embeds = latents.new_zeros(*present.shape, self.label_embeds.shape[-1])
        if present.any():
            ref_latents[present], embeds[present] = self.reference_encodings(batch, present, latents.dtype)
        captions = [c if use else "" for c, use in zip(batch["caption"], conditions.use_caption.tolist(), strict=True)]
        text = self.encode_text(captions).to(latents.dtype)
        return {"latents": latents, "ref_latents": ref_latents, "context": torch.cat([text, pack_image_tokens(embeds, present)], 1)}

    def reference_encodings(self, batch: dict, present: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """The present references' latents and CLIP image embeddings, in `present.nonzero()` order;
        with the cache, only the references never seen before are encoded (in one batch each)."""
        rows, slots = present.nonzero(as_tuple=True)
        if self.reference_cache is None:
            return self.encode_references(batch, rows, slots, dtype)
        keys = [(int(batch["index"][row]), int(slot)) for row, slot in zip(rows.tolist(), slots.tolist(), strict=True)]
        missing = [position for position, key in enumerate(keys) if key not in self.reference_cache]
        if missing:
            chosen = torch.tensor(missing, device=rows.device)
            new_latents, new_embeds = self.encode_references(batch, rows[chosen], slots[chosen], dtype)
            for position, latent, embed in zip(missing, new_latents, new_embeds, strict=True):
                self.reference_cache[keys[position]] = (latent, embed)
        cached = [self.reference_cache[key] for key in keys]
        return torch.stack([latent for latent, _ in cached]).to(dtype), torch.stack([embed for _, embed in cached]).to(dtype)

    def encode_references(
        self, batch: dict, rows: torch.Tensor, slots: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = batch["ref_pixels"].to(self.device)[rows, slots]
        clip_pixels = batch["clip_pixels"].to(self.device)[rows, slots]
        latents = reference_latents(self.vae, pixels, self.device).to(dtype)
        return latents, self.image_encoder(clip_pixels).image_embeds.to(dtype)


def class_weight_table(loss_weights: dict[str, float]) -> torch.Tensor:
    """One loss weight per `PARSING_CLASSES` entry: those `loss_weights` names, 1 for the rest."""
    unknown = sorted(set(loss_weights) - set(PARSING_CLASSES))
    if unknown:
        raise ValueError(f"loss_weights names unknown parsing class(es) {unknown}; the classes are {list(PARSING_CLASSES)}.")
    table = torch.ones(len(PARSING_CLASSES))
    for name, weight in loss_weights.items():
        if isinstance(weight, bool) or not isinstance(weight, int | float) or not weight > 0:
            raise ValueError(f"loss_weights[{name!r}] must be a positive number, got {weight!r}.")
        table[PARSING_CLASSES.index(name)] = float(weight)
    return table


def latent_loss_weights(parsing: torch.Tensor, class_weights: torch.Tensor, latent_size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) parsing maps -> (B, 1, h, w) weights: each latent cell's is the mean of its pixels'
    class weights, so a cell half hair, half background weighs half of each."""
    pixel_weights = class_weights.to(parsing.device)[parsing][:, None]
    return F.adaptive_avg_pool2d(pixel_weights, latent_size)


def weighted_mse(prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Sum of weights x squared errors over the sum of the weights (`weights` broadcast over channels)."""
    return ((prediction - target).square() * weights).mean() / weights.mean()


def check_timestep_bias(high_noise_portion: float, high_noise_multiplier: float) -> None:
    """A sentence for settings `timestep_draw_weights` cannot use, before a run starts."""
    if not 0.0 <= high_noise_portion <= 1.0:
        raise ValueError(f"high_noise_portion must be between 0 and 1, got {high_noise_portion!r}.")
    if not high_noise_multiplier > 0:
        raise ValueError(f"high_noise_multiplier must be a positive number, got {high_noise_multiplier!r}.")


def timestep_draw_weights(num_train_timesteps: int, high_noise_portion: float, high_noise_multiplier: float) -> torch.Tensor | None:
    """How often each training timestep is drawn: the noisiest `high_noise_portion` of them
    `high_noise_multiplier` times as often as the rest, where a region's colour is decided
    (docs/training.md, "Drawing the noisier timesteps more often"); None for the uniform draw."""
    check_timestep_bias(high_noise_portion, high_noise_multiplier)
    noisiest = round(num_train_timesteps * high_noise_portion)
    if noisiest == 0 or high_noise_multiplier == 1.0:
        return None
    weights = torch.ones(num_train_timesteps)
    weights[num_train_timesteps - noisiest :] = high_noise_multiplier
    return weights


def draw_timesteps(count: int, num_train_timesteps: int, weights: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
    """`count` training timesteps: uniform, or in proportion to `weights` (`timestep_draw_weights`)."""
    if weights is None:
        return torch.randint(0, num_train_timesteps, (count,), generator=generator)
    return torch.multinomial(weights, count, replacement=True, generator=generator)


def training_loss(
    model: nn.Module,
    frozen: FrozenEncoders,
    noise_scheduler: DDPMScheduler,
    batch: dict,
    dropouts: tuple[float, float, float],
    generator: torch.Generator,
    class_weights: torch.Tensor | None = None,
    timestep_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """MSE between the prediction and its target at drawn timesteps (uniformly, or by
    `timestep_weights`): the noise, or the velocity for a v-prediction schedule. With `class_weights`
    (one per parsing class) each latent cell's squared error is weighted by the classes it covers and
    the sum divided by the weights', so all-equal weights give the plain MSE (docs/training.md,
    "Weighting the person")."""
    device = frozen.device
    conditions = draw_conditions(batch["present"], *dropouts, generator=generator)
    encoded = frozen.encode(batch, conditions, generator)
    latents = encoded["latents"]
    noise = torch.randn(latents.shape, generator=generator).to(device, latents.dtype)
    timesteps = draw_timesteps(latents.shape[0], noise_scheduler.config.num_train_timesteps, timestep_weights, generator).to(device)
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    prediction = model(
        noisy, timesteps, encoded["context"], encoded["ref_latents"], frozen.label_embeds, batch["ref_masks"].to(device),
        conditions.present.to(device), batch["pose"].to(device), conditions.use_pose.to(device),
    )  # fmt: skip
    target = noise if noise_scheduler.config.prediction_type == "epsilon" else noise_scheduler.get_velocity(latents, noise, timesteps)
    if class_weights is None:
        return F.mse_loss(prediction.float(), target.float())
    weights = latent_loss_weights(batch["parsing"].to(device), class_weights, tuple(latents.shape[-2:]))
    return weighted_mse(prediction.float(), target.float(), weights)
