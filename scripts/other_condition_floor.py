"""The best score a model could get in the evaluation's "another person's references" condition.

    python scripts/other_condition_floor.py --data DATA [--split test] [--limit 100]

For a synthetic dataset (`python -m parts2whole.synthetic`, which records its seed in
`synthetic.json`) the perfect answer to "draw this pose with that person's parts" can be rendered:
the partner's appearance (skin, hair or headwear, outfit, shoes) on the target's body, in the
target's pose, camera and light (`parts2whole.synthetic.swapped_photo`). This script renders it for
every pair that `python -m parts2whole.evaluate` makes and scores it as the evaluation scored a
generation before it judged this condition by that perfect answer: against the partner's colours
in the partner's own photo, and against the target's own; their ratio per label. What it cannot
reach was that measurement's floor, not the model's fault: the partner's hair or hat has another
shape than the target's parsing region for it, the partner's sleeves and hems end elsewhere, and
the partner's colours were measured in another pose and light. As a check, the target itself is
rendered again and scored against its own colours (about 0: the rendering is the dataset's).
"""

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from parts2whole.evaluate import load_person, score, synthetic_origin
from parts2whole.evaluation.scoring import mean_by_label, pair_people
from parts2whole.labels import PART_LABELS
from parts2whole.synthetic import swapped_photo
from parts2whole.training.data import PartsDataset, read_samples


def floor_rows(data: Path, split: str, limit: int | None) -> list[dict]:
    """Per pair: the scores of the rendered ideal under "other" as measured against the partner's
    photo, and of the re-rendered target under "all"."""
    origin = synthetic_origin(data)
    if origin is None:
        raise SystemExit(f"{data} has no synthetic.json: not a synthetic dataset, or one made before it was written")
    samples = read_samples(data, split)
    width, height = Image.open(samples[0].target).size
    dataset = PartsDataset(data, split, (height, width), random_crop=False)
    partners = pair_people(dataset.samples)
    count = len(dataset) if limit is None else min(limit, len(dataset))
    rows = []
    for index in tqdm(range(count), desc="people"):
        if partners[index] is None:
            continue
        person, partner = load_person(dataset, index), load_person(dataset, partners[index])
        target, given = int(person.sample.target.stem), int(partner.sample.target.stem)
        ideal, _ = swapped_photo(origin["seed"], target, given, (width, height))
        again, _ = swapped_photo(origin["seed"], target, target, (width, height))
        rows.append({
            "target": person.sample.target.name,
            "partner": partner.sample.target.name,
            "other": score(np.asarray(ideal.convert("RGB")), person, partner, "other"),
            "same": score(np.asarray(again.convert("RGB")), person, None, "all"),
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--out", type=Path, help="write the rows and the summary as JSON here")
    args = parser.parse_args()
    rows = floor_rows(args.data, args.split, args.limit)
    given, _ = mean_by_label(row["other"]["delta_e"] for row in rows)
    own, _ = mean_by_label(row["other"]["delta_e_own"] for row in rows)
    same, _ = mean_by_label(row["same"]["delta_e"] for row in rows)
    summary = {
        label: {"to_given": given[label], "to_own": own[label], "ratio": given[label] / own[label], "same": same[label]}
        for label in PART_LABELS
        if label in given
    }
    print(f"{len(rows)} pairs; the ideal's ΔE to the given / to the own colours (ratio); the target re-rendered")
    for label, values in summary.items():
        print(f"{label:20s} {values['to_given']:5.2f} / {values['to_own']:5.2f} ({values['ratio']:.3f}); {values['same']:.2f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"pairs": len(rows), "summary": summary, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
