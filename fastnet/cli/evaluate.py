"""fastnet eval: a checkpoint's accuracy and confusion matrix on a test set, printed and drawn
(confusion.png, errors.png: next to the checkpoint, or into --out; another checkpoint than
checkpoint.npz names its own, e.g. confusion-best.png for best.npz)."""

from pathlib import Path

import numpy

from fastnet import catalog
from fastnet.cli.backend_choice import add_backend_options, choose_backend
from fastnet.cli.common import load_run_data, read_run
from fastnet.cli.parser import positive_int


def register(sub):
    p = sub.add_parser("eval", help="accuracy and confusion matrix of a checkpoint on a test set")
    p.add_argument("checkpoint", help="checkpoint.npz or best.npz of a fastnet train run")
    p.add_argument(
        "--dataset",
        choices=catalog.DATASETS,
        default=None,
        help="default: the data set the checkpoint was trained on, from the folder it recorded",
    )
    p.add_argument(
        "--data-dir", default=None, help="folder holding the four IDX files (missing ones are downloaded there)"
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=catalog.EVAL_BATCH,
        help="images per forward pass (default: %(default)s)",
    )
    p.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="folder for confusion.png and errors.png (confusion-best.png and errors-best.png for "
        "best.npz; default: the checkpoint's folder)",
    )
    add_backend_options(p)
    p.set_defaults(run=run)


def confusion_matrix(labels, predictions, classes=10):
    matrix = numpy.zeros((classes, classes), dtype=numpy.int64)
    numpy.add.at(matrix, (labels, predictions), 1)
    return matrix


def format_matrix(matrix):
    width = max(5, len(str(matrix.max())) + 1)
    head = "true\\pred" + "".join(f"{j:>{width}}" for j in range(matrix.shape[1]))
    rows = [f"{i:>9}" + "".join(f"{v:>{width}}" for v in row) for i, row in enumerate(matrix)]
    return "\n".join([head, *rows])


def run(args):
    from fastnet.errors import DataError
    from fastnet.plots import write_eval_pictures
    from fastnet.training import build_net
    from fastnet.training.checkpoint import load_checkpoint_arrays, restore_net
    from fastnet.training.memory import check_batch_fits

    meta, config = read_run(args.checkpoint)
    name = args.dataset or config.dataset
    # The recorded folder is where the run's own data set lives; another set is looked up as usual.
    recorded = meta["config"] if name == config.dataset else None
    backend = choose_backend(args, quiet=True).backend
    data = load_run_data(name, args.data_dir, recorded, config.flatten, progress=False, checkpoint=args.checkpoint)
    if data.x_test.shape[0] == 0:
        raise DataError(f"the {data.name} test set from {data.source} holds no images; nothing to score")
    net = build_net(config, backend, data.x_test.shape[1:])
    restore_net(net, load_checkpoint_arrays(args.checkpoint, net), args.checkpoint)
    batch = min(args.batch_size, data.x_test.shape[0])
    check_batch_fits(net, data.x_test.shape[1:], batch)  # before the big forward passes
    x = backend.asarray(data.x_test, dtype=net.dtype)
    scores = numpy.concatenate([backend.to_numpy(y) for _, y in net.predict_batches(x, batch)])
    predicted = scores.argmax(axis=1)
    labels = numpy.asarray(data.t_test)
    matrix = confusion_matrix(labels, predicted)
    print(f"checkpoint: {args.checkpoint} ({config.net}, {which_epoch(meta)})")
    print(f"data: {data.name} test set from {data.source} ({len(labels):,} images), backend {backend.name}")
    print(f"test accuracy: {float((predicted == labels).mean()):.4f}")
    print("confusion matrix (rows: true class, columns: predicted):")
    print(format_matrix(matrix))
    folder = Path(args.out) if args.out else Path(args.checkpoint).parent
    title = f"{config.net} on {data.name}"
    checkpoint_name = Path(args.checkpoint).stem  # best.npz's pictures are not checkpoint.npz's
    pictures = write_eval_pictures(
        folder, matrix, data.x_test, labels, scores, data.classes, title=title, checkpoint_name=checkpoint_name
    )
    for path in pictures:
        print(f"picture: {path}")
    return 0


def which_epoch(meta) -> str:
    """Which epoch a checkpoint holds, in words: the last one saved, or the best on validation."""
    epoch = meta["progress"]["epoch"]
    return f"best validation epoch {epoch}" if meta["progress"].get("kept_as") == "best" else f"epoch {epoch}"
