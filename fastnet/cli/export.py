"""fastnet export: a trained net as ONNX, safetensors or a PyTorch file, for use elsewhere."""

from __future__ import annotations

from fastnet.errors import InputError

FORMATS = ("onnx", "safetensors", "torch")
NEEDS = {
    "onnx": ("onnx", "pip install 'fastnet[onnx]'"),
    "safetensors": ("safetensors", "pip install 'fastnet[export]'"),
    "torch": ("torch", "pip install 'fastnet[torch]'"),
}


def register(sub):
    p = sub.add_parser("export", help="write a net as ONNX, safetensors or a PyTorch file")
    p.add_argument("checkpoint", help="checkpoint.npz, best.npz or a parameter file")
    p.add_argument("--format", choices=FORMATS, required=True, help="the file format to write")
    p.add_argument("--out", required=True, metavar="FILE", help="the file to write (replaced atomically)")
    p.set_defaults(run=run)


def run(args):
    import importlib.util

    from fastnet.interop.spec import spec_shapes
    from fastnet.loading import load_with_info

    module, fix = NEEDS[args.format]
    if importlib.util.find_spec(module) is None:
        raise InputError(f"--format {args.format} needs the {module} package; {fix}")
    loaded = load_with_info(args.checkpoint, "numpy")
    net = loaded.net
    if args.format == "onnx":
        from fastnet.interop.onnx_export import save_onnx

        path = save_onnx(net, args.out)
    elif args.format == "safetensors":
        from fastnet.interop.safetensors_io import save_safetensors

        path = save_safetensors(net, args.out, loaded.dataset)
    else:
        from fastnet.interop.torch import save_torch

        path = save_torch(net, args.out, loaded.dataset)
    count = len(spec_shapes(net))
    print(f"wrote {path} ({args.format}: {type(net).__name__}, {count} arrays, {loaded.dataset} images)")
    return 0
