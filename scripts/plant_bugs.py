"""Plant each bug of docs/testing.md's table, one at a time, in a copy of the repository and run the
tests named for it: each must fail. Prints CAUGHT or MISSED and the first failing test per bug.

    .venv/bin/python scripts/plant_bugs.py [NAME-PART ...]     # all, or those whose name contains one
"""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1]
BUGS = [  # (name, file, line as it is, the line with the bug, the tests that must catch it)
    (
        "log(count) bias dropped",
        "parts2whole/attention.py",
        "fold_key[..., head_dim] = math.log(num_zero) * head_dim**0.5",
        "fold_key[..., head_dim] = 0.0",
        "tests/test_fast_vs_plain.py",
    ),
    (
        "first label's text for every part",
        "parts2whole/pipeline.py",
        "label_embeds = text_embeds[:1], text_embeds[1:2], text_embeds[2:]",
        "label_embeds = text_embeds[:1], text_embeds[1:2], text_embeds[2:3].expand(len(labels), -1, -1)",
        "tests/test_pipeline.py",
    ),
    (
        "parts sorted alphabetically",
        "parts2whole/labels.py",
        "return [label for label in PART_LABELS if label in given]",
        "return sorted(given)",
        "tests/test_pipeline.py tests/test_inputs.py",
    ),
    (
        "user masks ignored",
        "parts2whole/pipeline.py",
        "prepare_reference(appearance[label], (mask or {}).get(label), width, height, label)",
        "prepare_reference(appearance[label], None, width, height, label)",
        "tests/test_pipeline.py",
    ),
    (
        "one seed for every image",
        "parts2whole/jobs.py",
        "manual_seed(request.seed + i)",
        "manual_seed(request.seed)",
        "tests/test_cli.py tests/test_ui_handlers.py",
    ),
    (
        "pose features zeroed",
        "parts2whole/pipeline.py",
        "pose_features = self.pose_guider(pose[None].to(device, self.pose_guider.dtype)).to(dtype)",
        "pose_features = 0 * self.pose_guider(pose[None].to(device, self.pose_guider.dtype)).to(dtype)",
        "tests/test_pipeline.py",
    ),
    (
        "uncond context keeps image tokens",
        "parts2whole/pipeline.py",
        "torch.cat([negative_embeds, torch.zeros_like(image_tokens)], dim=1)",
        "torch.cat([negative_embeds, image_tokens], dim=1)",
        "tests/test_pipeline.py",
    ),
    (
        "guidance branches swapped",
        "parts2whole/pipeline.py",
        "noise_uncond, noise_cond = noise_pred.chunk(2)",
        "noise_cond, noise_uncond = noise_pred.chunk(2)",
        "tests/test_pipeline.py",
    ),
    (
        "guidance scale ignored",
        "parts2whole/pipeline.py",
        "noise_pred = noise_uncond + guidance_scale * (noise_cond - noise_uncond)",
        "noise_pred = noise_cond",
        "tests/test_pipeline.py",
    ),
    (
        "uncond rows attend to the parts",
        "parts2whole/attention.py",
        "num_uncond = bank.num_uncond",
        "num_uncond = 0",
        "tests/test_pipeline.py",
    ),
    (
        "densepose background 0.2 -> 0.02",
        "parts2whole/densepose.py",
        "if background.mean() < 0.2:",
        "if background.mean() < 0.02:",
        "tests/test_densepose_check.py",
    ),
    (
        "densepose out-of-range share 0.2 -> 0.9",
        "parts2whole/densepose.py",
        "> NUM_PARTS + INDEX_SLACK).mean()) > 0.2:",
        "> NUM_PARTS + INDEX_SLACK).mean()) > 0.9:",
        "tests/test_densepose_check.py",
    ),
    (
        "OOM message generic (demo)",
        "ui/models.py",
        '"The GPU ran out of memory. Try a smaller size',
        '"Something went wrong. Try a smaller size',
        "tests/test_ui_handlers.py",
    ),
    (
        "OOM message generic (CLI)",
        "parts2whole/cli.py",
        "message = OUT_OF_MEMORY_HINT if isinstance(error, torch.cuda.OutOfMemoryError) else error",
        "message = error",
        "tests/test_cli.py",
    ),
    (
        "upscaler BGR not converted back",
        "parts2whole/upscale.py",
        "Image.fromarray(np.ascontiguousarray(output[..., ::-1]))",
        "Image.fromarray(np.ascontiguousarray(output))",
        "tests/test_demo_models.py",
    ),
    ("upscaler tiles without padding", "parts2whole/upscale.py", "tile_pad=10", "tile_pad=0", "tests/test_demo_models.py"),
    (
        "demo ignores random seed",
        "ui/handlers.py",
        'seed = self.random_seed() if form["random_seed"] else',
        'seed = whole_number(form["seed"], "The seed", 0, MAX_SEED) if True else',
        "tests/test_ui_handlers.py",
    ),
    (
        "demo ignores the scheduler",
        "ui/handlers.py",
        '"scheduler": settings.SCHEDULER_CHOICES[scheduler]}',
        '"scheduler": "ddim"}',
        "tests/test_ui_handlers.py",
    ),
    (
        "jobs ignore the scheduler (CLI)",
        "parts2whole/jobs.py",
        "scheduler = (schedulers or {}).get(request.scheduler) or make_scheduler(request.scheduler, pipe.scheduler.config)",
        "scheduler = None",
        "tests/test_cli.py",
    ),
]


def main(only: list[str]) -> int:
    missed = 0
    for name, path, old, new, tests in BUGS:
        if only and not any(part in name for part in only):
            continue
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "repo"
            ignored = shutil.ignore_patterns(".venv", "mutants", "runs", ".git", "pretrained_weights", "docs", "__pycache__")
            shutil.copytree(SRC, copy, ignore=ignored)
            file = copy / path
            text = file.read_text()
            if text.count(old) != 1:
                raise SystemExit(f"{name}: the line to change is not in {path} once; update BUGS.")
            file.write_text(text.replace(old, new))
            command = [sys.executable, "-m", "pytest", "-q", "-x", *tests.split()]
            result = subprocess.run(command, cwd=copy, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(copy)})
        failed = [line.split(" ")[1] for line in result.stdout.splitlines() if line.startswith("FAILED")]
        caught = result.returncode == 1 and bool(failed)
        missed += not caught
        print(f"{'CAUGHT' if caught else 'MISSED'} | {name} | {', '.join(failed) or result.stdout[-200:]}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
