"""Where every set of weights comes from and how to fetch it (`python download_weights.py`)."""

import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import snapshot_download

DEFAULT_WEIGHTS_DIR = Path("pretrained_weights")


@dataclass(frozen=True)
class WeightsSource:
    """One download: a Hugging Face repo (with the files it needs) or a plain URL, and where it goes."""

    name: str
    target: str
    description: str
    repo_id: str | None = None
    allow_patterns: tuple[str, ...] | None = None
    url: str | None = None


SOURCES: dict[str, WeightsSource] = {
    source.name: source
    for source in (
        WeightsSource(
            "parts2whole",
            "parts2whole",
            "the released Parts2Whole checkpoint",
            repo_id="huanngzh/Parts2Whole",
            allow_patterns=("model_index.json", "*/*.json", "*/*.txt", "*/*.safetensors", "decoupled_attn.pth"),
        ),
        WeightsSource(
            "sd-vae-ft-mse",
            "sd-vae-ft-mse",
            "the fine-tuned SD VAE the authors decode with",
            repo_id="stabilityai/sd-vae-ft-mse",
            allow_patterns=("*.json", "*.safetensors"),
        ),
        WeightsSource(
            "segformer",
            "segformer_b2_clothes",
            "the SegFormer clothes parser that makes part masks",
            repo_id="mattmdjaga/segformer_b2_clothes",
            allow_patterns=("*.json", "*.safetensors"),
        ),
        WeightsSource(
            "realesrgan",
            "RealESRGAN_x4plus.pth",
            "the Real-ESRGAN x4plus upscaler for small references",
            url="https://github.com/xinntao/Real-ESRGAN/releases/download/v0.1.0/RealESRGAN_x4plus.pth",
        ),
    )
}


def fetch_command(name: str | None = None, weights_dir: str | Path = DEFAULT_WEIGHTS_DIR) -> str:
    """The command that fetches `name` (all weights when None) into `weights_dir`, for error messages."""
    command = "python download_weights.py" + (f" --only {name}" if name else "")
    if Path(weights_dir).resolve() != Path(DEFAULT_WEIGHTS_DIR).resolve():
        command += f" --dir {weights_dir}"
    return command


def weights_path(name: str, weights_dir: str | Path = DEFAULT_WEIGHTS_DIR) -> Path:
    return Path(weights_dir) / SOURCES[name].target


def download(name: str, weights_dir: str | Path = DEFAULT_WEIGHTS_DIR) -> Path:
    """Fetch one source into `weights_dir`; an interrupted download resumes where it stopped."""
    source = SOURCES[name]
    target = weights_path(name, weights_dir)
    if source.repo_id is not None:
        snapshot_download(repo_id=source.repo_id, local_dir=target, allow_patterns=list(source.allow_patterns or ()))
    else:
        download_url(source.url, target)
    return target


def download_url(url: str, target: Path, chunk_size: int = 1 << 20) -> None:
    """Download `url` to `target` through `target.part`, asking only for the bytes still missing."""
    if target.is_file():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".part")
    have = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    with urllib.request.urlopen(request, timeout=60) as response:
        resumed = response.status == 206
        with open(partial, "ab" if resumed else "wb") as out:
            shutil.copyfileobj(response, out, chunk_size)
    partial.rename(target)
