"""A contact sheet of a dataset in the authors' format, one person a row: target | DensePose (false
colour) | parsing | the six reference slots (each reference with its mask outlined) | caption.

    python -m parts2whole.synthetic.sheet DIR --out sheet.png [--people 16] [--tile 128x192]
"""

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from ..densepose import densepose_preview
from ..labels import PART_LABELS

PARSING_COLOURS = np.array(
    [(0, 0, 0), (200, 60, 20), (250, 200, 150), (40, 120, 220), (30, 180, 60), (160, 60, 200), (230, 230, 40), (150, 150, 150)],
    np.uint8,
)
"""Background, the six labels in PART_LABELS order, then skin and the rest of the person."""
OUTLINE = (255, 0, 255)
CAPTION_HEIGHT = 14


def outlined(reference: Image.Image, mask: Image.Image) -> Image.Image:
    """The reference with its mask's edge drawn on it."""
    inside = np.asarray(mask.convert("L")) > 127
    shrunk = np.asarray(mask.convert("L").filter(ImageFilter.MinFilter(3))) > 127
    pixels = np.asarray(reference.convert("RGB")).copy()
    pixels[inside & ~shrunk] = OUTLINE
    return Image.fromarray(pixels)


def person_row(root: Path, entry: dict, tile: tuple[int, int]) -> Image.Image:
    target = Image.open(root / entry["target"]).convert("RGB")
    parsing = np.asarray(Image.open(root / "parsing" / f"{Path(entry['target']).stem}.png"))
    tiles = [
        target.resize(tile, Image.Resampling.LANCZOS),
        densepose_preview(Image.open(root / entry["structure"]["densepose"])).resize(tile, Image.Resampling.NEAREST),
        Image.fromarray(PARSING_COLOURS[parsing]).resize(tile, Image.Resampling.NEAREST),
    ]
    for label in PART_LABELS:
        cell = Image.new("RGB", tile, (40, 40, 40))
        if label in entry["appearance"]:
            reference = Image.open(root / entry["appearance"][label])
            if label in entry["mask"]:
                reference = outlined(reference, Image.open(root / entry["mask"][label]))
            fitted = ImageOps.contain(reference.convert("RGB"), tile)
            cell.paste(fitted, ((tile[0] - fitted.width) // 2, (tile[1] - fitted.height) // 2))
        ImageDraw.Draw(cell).text((2, 2), label, fill=(255, 255, 255))
        tiles.append(cell)
    row = Image.new("RGB", (tile[0] * len(tiles), tile[1] + CAPTION_HEIGHT), (255, 255, 255))
    for index, cell in enumerate(tiles):
        row.paste(cell, (index * tile[0], CAPTION_HEIGHT))
    ImageDraw.Draw(row).text((2, 1), entry["caption"], fill=(0, 0, 0))
    return row


def contact_sheet(root: Path, people: int, tile: tuple[int, int]) -> Image.Image:
    entries = [json.loads(line) for split in ("train", "test") for line in (root / f"{split}.jsonl").read_text().splitlines() if line]
    rows = [person_row(root, entry, tile) for entry in sorted(entries, key=lambda e: e["target"])[:people]]
    sheet = Image.new("RGB", (rows[0].width, sum(row.height for row in rows)), (255, 255, 255))
    for index, row in enumerate(rows):
        sheet.paste(row, (0, index * row.height))
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parts2whole.synthetic.sheet", description=__doc__)
    parser.add_argument("root", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--people", type=int, default=16)
    parser.add_argument("--tile", default="128x192", help="WIDTHxHEIGHT of each cell")
    args = parser.parse_args(argv)
    width, height = (int(side) for side in args.tile.split("x"))
    contact_sheet(args.root, args.people, (width, height)).save(args.out)
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
