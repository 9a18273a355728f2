"""What an evaluation shows: the table of scores (markdown, also printed) and a sheet of samples."""

from pathlib import Path

from PIL import Image, ImageDraw, ImageOps

from ..labels import PART_LABELS
from ..preprocess import composite_on_white, load_image, to_rgba

MISSING = "–"
TITLE_HEIGHT = 14


def table_rows(summary: dict[str, dict], segmentation_iou: float, people: int) -> list[tuple]:
    """(row name, ΔE per label, IoU, people) per row: `other` twice (against the references it was
    given and against the target's own clothes), then the segmentation check on the ground truth."""
    rows = []
    for condition, scores in summary.items():
        if condition == "other":
            rows.append(("other: vs the references given", scores.get("delta_e", {}), scores["iou"], scores["people"]))
            rows.append(
                ("other: vs the target's own clothes", scores.get("delta_e_own", {}), scores["iou"], scores["people"])
            )
        else:
            rows.append((condition, scores.get("delta_e", {}), scores["iou"], scores["people"]))
    rows.append(("ground truth (segmentation check)", {}, segmentation_iou, people))
    return rows


def markdown_table(summary: dict[str, dict], segmentation_iou: float, people: int) -> str:
    """Rows = conditions, columns = mean ΔE (CIEDE2000) of each label that was measured, then IoU."""
    rows = table_rows(summary, segmentation_iou, people)
    labels = [label for label in PART_LABELS if any(label in delta for _, delta, _, _ in rows)]
    lines = [
        "| condition | " + " | ".join(f"ΔE {label}" for label in labels) + " | IoU | people |",
        "|---|" + "---:|" * (len(labels) + 2),
    ]
    for name, delta, iou, count in rows:
        cells = [f"{delta[label]:.1f}" if label in delta else MISSING for label in labels]
        cells += [MISSING if iou is None else f"{iou:.3f}", str(count)]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def target_lines(targets: list[dict]) -> list[str]:
    verdicts = {True: "PASS", False: "FAIL", None: "not measured"}
    return [f"- {verdicts[t['passed']]}: {t['target']} ({t['detail']})" for t in targets]


def references_tile(paths: list[Path], size: tuple[int, int]) -> Image.Image:
    """A person's references as given (on white), up to six in a 2 x 3 grid in one cell."""
    width, height = size
    tile = Image.new("RGB", size, "white")
    thumb = (width // 2, height // 3)
    for index, path in enumerate(paths):
        reference = composite_on_white(to_rgba(load_image(path, "a reference")))
        tile.paste(ImageOps.pad(reference, thumb, color="white"), ((index % 2) * thumb[0], (index // 2) * thumb[1]))
    return tile


def samples_sheet(rows: list[dict[str, Image.Image]], columns: list[str], size: tuple[int, int]) -> Image.Image:
    """One row per person, one titled column per name in `columns`; a cell a row lacks stays blank."""
    width, height = size
    sheet = Image.new("RGB", (len(columns) * width, TITLE_HEIGHT + len(rows) * height), "white")
    draw = ImageDraw.Draw(sheet)
    for c, name in enumerate(columns):
        draw.text((c * width + 2, 1), name, fill="black")
        for r, row in enumerate(rows):
            if name in row:
                sheet.paste(row[name].convert("RGB").resize(size), (c * width, TITLE_HEIGHT + r * height))
    return sheet
