"""fastnet predict: a trained net's answer for your own pictures, file by file.

Pictures are prepared as the net's data set was made (``fastnet.images``).  A picture that
cannot be used is one line on stderr and the others are still predicted; the exit code is then 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fastnet.cli.backend_choice import add_backend_options, choose_backend
from fastnet.cli.parser import positive_int
from fastnet.errors import InputError


def register(sub):
    p = sub.add_parser("predict", help="predict the class of your own images (PNG, JPEG, BMP, GIF)")
    p.add_argument("checkpoint", help="checkpoint.npz, best.npz, a parameter file or a .safetensors export")
    p.add_argument(
        "images", nargs="+", metavar="IMAGE|FOLDER", help="image files, or folders whose images are all predicted"
    )
    p.add_argument("--top", type=positive_int, default=1, metavar="K", help="show the K most likely classes")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.add_argument(
        "--recipe",
        choices=("mnist", "fashion-mnist"),
        default=None,
        help="how to prepare the images (default: the data set the net was trained on)",
    )
    p.add_argument("--batch-size", type=positive_int, default=256, help=argparse.SUPPRESS)
    add_backend_options(p, default="numpy")
    p.set_defaults(run=run)


def image_files(names) -> list[Path]:
    """Each named file as it is; each folder's image files (by suffix, sorted, not recursive)."""
    from fastnet.images import SUFFIXES

    files = []
    for name in names:
        path = Path(name)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
            if not found:
                raise InputError(f"{name}: no image files ({', '.join(SUFFIXES)}) in this folder")
            files.extend(found)
        else:
            files.append(path)
    return files


def top_classes(probabilities, classes, k):
    order = probabilities.argsort()[::-1][:k]
    return [{"class": int(i), "label": classes[i], "probability": float(probabilities[i])} for i in order]


def run(args):
    import numpy

    from fastnet.images import as_net_input, prepare
    from fastnet.loading import load_with_info

    files = image_files(args.images)
    backend = choose_backend(args, quiet=True).backend
    loaded = load_with_info(args.checkpoint, backend)
    recipe = args.recipe or loaded.dataset
    images, good, results = [], [], []
    for path in files:
        try:
            images.append(prepare(path, recipe))
            good.append(path)
            results.append({"file": str(path)})
        except InputError as exc:
            results.append({"file": str(path), "error": str(exc)})
        except OSError as exc:
            results.append({"file": str(path), "error": f"cannot be read ({exc.strerror or exc})"})
    if images:
        x = backend.asarray(as_net_input(loaded.net, numpy.stack(images)))
        probabilities = backend.to_numpy(loaded.net.predict_proba(x, args.batch_size))
        answers = iter(probabilities)
        for result in results:
            if "error" not in result:
                result["top"] = top_classes(next(answers), loaded.classes, min(args.top, len(loaded.classes)))
    for result in results:
        if "error" in result:
            print(f"fastnet: error: {result['file']} {result['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps({"checkpoint": str(args.checkpoint), "recipe": recipe, "results": results}, indent=1))
    else:
        for result in results:
            if "top" in result:
                shown = ", ".join(f"{t['label']} {t['probability']:.3f}" for t in result["top"])
                print(f"{result['file']}: {shown}")
    return 2 if any("error" in r for r in results) else 0
