"""The example gallery: every folder of examples/ with an example.json (a request in its JSON form)."""

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

from parts2whole.densepose import densepose_preview
from parts2whole.jobs import read_requests
from parts2whole.labels import order_labels
from parts2whole.request import GenerationRequest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
THUMBNAIL_HEIGHT = 240


@dataclass
class Example:
    name: str
    request: GenerationRequest  # example.json: paths absolute, unset settings the model's defaults
    thumbnail: Image.Image


def load_examples(root: Path = EXAMPLES_DIR, defaults: dict | None = None) -> list[Example]:
    """Every example, its unset settings taken from `defaults` (the model's own, see ui.models)."""
    examples = []
    for path in sorted(root.glob("*/example.json")):
        (request,) = read_requests(path, defaults)
        examples.append(Example(path.parent.name, request, thumbnail(request)))
    return examples


def load_poses(root: Path = EXAMPLES_DIR) -> list[Path]:
    """The pose gallery: examples/poses/*.png."""
    return sorted((root / "poses").glob("*.png"))


def thumbnail(request: GenerationRequest, height: int = THUMBNAIL_HEIGHT) -> Image.Image:
    """The pose in false colour on the left, the parts in a two-column grid on the right."""
    pose = densepose_preview(Image.open(request.structure["densepose"]))
    parts = [Image.open(request.appearance[label]) for label in order_labels(request.appearance)]
    cell = height // 3
    sheet = Image.new("RGBA", (height * 2 // 3 + 2 * cell, height), (238, 238, 242, 255))
    sheet.alpha_composite(ImageOps.contain(pose.convert("RGBA"), (height * 2 // 3, height)))
    for index, part in enumerate(parts):
        tile = ImageOps.contain(part.convert("RGBA"), (cell - 4, cell - 4))
        column, row = index % 2, index // 2
        sheet.alpha_composite(tile, (height * 2 // 3 + column * cell + (cell - tile.width) // 2, row * cell + (cell - tile.height) // 2))
    return sheet.convert("RGB")
