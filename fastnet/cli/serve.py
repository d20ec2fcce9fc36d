"""fastnet serve: a page to draw a digit on (with the net's ten probabilities as you draw) and
``POST /predict`` for programs, on 127.0.0.1 unless told otherwise.  Ctrl-C stops it."""

from __future__ import annotations

import argparse

from fastnet.cli.backend_choice import add_backend_options, choose_backend
from fastnet.cli.parser import number_option
from fastnet.errors import InputError

port_number = number_option(int, lambda v: 0 <= v <= 65535, "a port number (0-65535; 0 picks a free one)")


def register(sub):
    p = sub.add_parser("serve", help="a page to draw a digit on, and POST /predict (JSON)")
    p.add_argument("checkpoint", help="checkpoint.npz, best.npz, a parameter file or a .safetensors export")
    p.add_argument("--port", type=port_number, default=8000, help="(default: %(default)s)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument(
        "--recipe",
        choices=("mnist", "fashion-mnist"),
        default=None,
        help="how to prepare the images (default: the data set the net was trained on)",
    )
    p.add_argument("--request-timeout", type=float, default=10.0, help=argparse.SUPPRESS)
    add_backend_options(p, default="numpy")
    p.set_defaults(run=run)


def run(args):
    from fastnet.loading import load_with_info
    from fastnet.serve import make_server

    backend = choose_backend(args, quiet=True).backend
    loaded = load_with_info(args.checkpoint, backend)
    try:
        server = make_server(loaded, args.host, args.port, args.recipe, args.request_timeout)
    except OSError as exc:
        raise InputError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); pick another --port"
        ) from None
    host, port = server.server_address[:2]
    print(
        f"serving {type(loaded.net).__name__} ({loaded.dataset}) on http://{host}:{port}/ "
        f"(POST images to /predict); Ctrl-C stops",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        from fastnet.cli.main import stop_handled

        stop_handled()  # Ctrl-C is how a server ends: exit 0
        print("fastnet serve: stopped", flush=True)
    finally:
        server.server_close()
    return 0
