"""The components of a model trained from scratch, all made here (no download), and the small
character-level tokenizer they read text with.

The text and image encoders stay frozen as docs/method.md §6 says; trained from scratch they are frozen at
their random initialisation, which still gives each label and caption its own fixed embedding.
"""

import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import (
    CLIPImageProcessor,
    CLIPTextConfig,
    CLIPTextModel,
    CLIPTokenizer,
    CLIPVisionConfig,
    CLIPVisionModelWithProjection,
)

from ..pose_guider import PoseGuider
from .config import ModelConfig

TOKENIZER_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789"
MAX_TEXT_TOKENS = 77  # as CLIP's, so the context layout is the released one (docs/method.md §2)


def character_tokenizer() -> CLIPTokenizer:
    """A CLIP tokenizer with no merges: every letter or digit is a token (a word's last one ends in
    `</w>`); other characters are dropped. Saved and loaded as any CLIP tokenizer."""
    pieces = list(TOKENIZER_CHARACTERS) + [c + "</w>" for c in TOKENIZER_CHARACTERS]
    vocab = {piece: index for index, piece in enumerate([*pieces, "<|startoftext|>", "<|endoftext|>"])}
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TEXT_TOKENS)


def make_vae(config: ModelConfig) -> AutoencoderKL:
    blocks = len(config.vae_channels)
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        block_out_channels=tuple(config.vae_channels),
        layers_per_block=config.vae_layers_per_block,
        latent_channels=config.vae_latent_channels,
        norm_num_groups=min(config.vae_norm_groups, config.vae_channels[0]),
    )


def make_unet(config: ModelConfig, latent_channels: int) -> UNet2DConditionModel:
    levels = len(config.unet_channels)
    return UNet2DConditionModel(
        in_channels=latent_channels,
        out_channels=latent_channels,
        block_out_channels=tuple(config.unet_channels),
        layers_per_block=config.layers_per_block,
        down_block_types=("CrossAttnDownBlock2D",) * (levels - 1) + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (levels - 1),
        cross_attention_dim=config.cross_attention_dim,
        attention_head_dim=config.attention_heads,  # diffusers' name for the number of heads here
        norm_num_groups=min(32, config.unet_channels[0]),
    )


def schedule_settings(config: ModelConfig) -> dict:
    """The released schedule (docs/method.md §4), or with `zero_terminal_snr` the same betas rescaled so that
    the last timestep holds no signal at all, which needs v-prediction and sampling that starts
    at that timestep ("trailing"). Why a small model needs it: docs/training.md."""
    if not config.zero_terminal_snr:
        return {}
    return {"rescale_betas_zero_snr": True, "prediction_type": "v_prediction", "timestep_spacing": "trailing"}


def scratch_components(config: ModelConfig, vae: AutoencoderKL | None = None) -> dict:
    """Every pipeline component of a new model; `vae` is the one the VAE stage trained, if any.

    Seeded, so that a resumed run rebuilds the same frozen encoders (their weights are never
    trained, so checkpoints do not hold them)."""
    torch.manual_seed(0)
    vae = vae or make_vae(config)
    tokenizer = character_tokenizer()
    width = config.cross_attention_dim
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer), hidden_size=width, intermediate_size=2 * width,
            num_hidden_layers=config.text_layers, num_attention_heads=4, max_position_embeddings=MAX_TEXT_TOKENS,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )
    )  # fmt: skip
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=width, projection_dim=width, intermediate_size=2 * width, num_hidden_layers=config.vision_layers,
            num_attention_heads=4, image_size=config.clip_image_size, patch_size=config.clip_patch_size,
        )
    )  # fmt: skip
    side = config.clip_image_size
    feature_extractor = CLIPImageProcessor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    pose_guider = PoseGuider(
        conditioning_embedding_channels=config.unet_channels[0], block_out_channels=tuple(config.pose_guider_channels)
    )
    scheduler = DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000,
        clip_sample=False, set_alpha_to_one=False, steps_offset=1, **schedule_settings(config),
    )  # fmt: skip
    return dict(
        vae=vae,
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        image_encoder=image_encoder.eval(),
        feature_extractor=feature_extractor,
        unet=make_unet(config, vae.config.latent_channels),
        reference_unet=make_unet(config, vae.config.latent_channels),
        pose_guider=pose_guider,
        scheduler=scheduler,
    )
