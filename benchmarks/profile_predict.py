"""Where one image's ``net.predict`` goes: the net's door, finding its plan, each step of the plan.

    python benchmarks/profile_predict.py [--backend numba] [--nets two-layer simple-conv deep-conv]
        [--out benchmarks/results/profiles/predict_one_image.json]

Each part is timed on its own, in a loop of calls after a warm-up (best of three loops of
``--calls``, per call), on the same image and net as ``fastnet bench``'s one-image workloads:
``net.predict`` whole; the net's door (structure and value checks, ``net._door``); finding the
plan (``net._inference_plan``); each step of the plan (a layer's unchecked forward, a fused pair
as one); and the bare matrix products of one image (``x @ W``, im2col products for the
convolutions).  The parts do not add up exactly to the whole: each is timed with warm caches.
"""

import argparse
import json
import time
from pathlib import Path

from fastnet.atomic import atomic_write
from fastnet.benchmarking.machine import machine_info
from fastnet.benchmarking.workloads import NETS, WORKLOADS, make_data, make_fastnet_net, matmul_bound_contender
from fastnet.profiling.layer_timer import _units
from fastnet.profiling.thread_choice import threads_for
from fastnet.threads import using_threads

ONE_IMAGE = {
    "two-layer": "two_layer_one_image",
    "simple-conv": "convnet_one_image",
    "deep-conv": "deep_convnet_one_image",
}


def per_call(fn, calls):
    """Microseconds per call: the best of three loops of ``calls`` calls, after a warm-up."""
    for _ in range(max(10, calls // 10)):
        fn()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def profile_one_image(net_name, backend_name, calls):
    from fastnet.backends import get_backend

    workload = WORKLOADS[ONE_IMAGE[net_name]]
    backend = get_backend(backend_name)
    net = make_fastnet_net(workload, backend)
    x = backend.asarray(make_data(workload)[0])
    rows = []
    with using_threads(threads_for(net, NETS[workload.net][1], 1)):
        net.predict(x)  # the first call checks each layer and makes the plan
        plan = net._inference_plan()
        rows.append(("net.predict, whole", per_call(lambda: net.predict(x), calls)))
        rows.append(("the door (structure, values)", per_call(lambda: net._door(x), calls)))
        rows.append(("finding the plan", per_call(net._inference_plan, calls)))
        out = x
        units = dict.fromkeys(_units(net).values())  # the plan's steps, a fused pair as one
        for unit, step in zip(units, plan.steps(False), strict=True):
            rows.append((f"step: {unit}", per_call(lambda step=step, out=out: step(out), calls)))
            out = step(out)
        bound = matmul_bound_contender(workload)
        rows.append(("the bare matrix products", per_call(bound.step, calls)))
    return {"net": type(net).__name__, "backend": backend_name, "rows": [{"part": p, "us": us} for p, us in rows]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", choices=list(ONE_IMAGE), default=list(ONE_IMAGE))
    parser.add_argument("--backend", default="numba")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--out", default=None, help="save the table as JSON")
    args = parser.parse_args()
    results = []
    for name in args.nets:
        result = profile_one_image(name, args.backend, args.calls)
        results.append(result)
        print(f"{result['net']} on {result['backend']}, net.predict on one image: microseconds per call")
        for row in result["rows"]:
            print(f"  {row['part']:<36}{row['us']:10.1f}")
    if args.out:
        record = {"command": f"python benchmarks/profile_predict.py --backend {args.backend}", "profiles": results}
        record["machine"] = machine_info()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write(args.out, lambda f: f.write(json.dumps(record, indent=2).encode() + b"\n"))
        print(f"saved: {args.out}")


if __name__ == "__main__":
    main()
