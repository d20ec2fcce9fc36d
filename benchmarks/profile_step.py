"""Where a training step's time goes, layer by layer, on each fastnet backend.

Times every layer's forward and backward and the optimizer update separately (best of many
runs, so other load on the machine matters less) and prints them next to the whole step.

    python benchmarks/profile_step.py [workload ...]     # default: every training workload
"""
import sys
import time

from fastnet.benchmarking.workloads import LEARNING_RATE, WORKLOADS, make_data, make_fastnet_net


def best_of(fn, runs=200, budget_s=1.0):
    best, spent, done = float("inf"), 0.0, 0
    while done < runs and spent < budget_s:
        start = time.perf_counter()
        fn()
        elapsed = time.perf_counter() - start
        best, spent, done = min(best, elapsed), spent + elapsed, done + 1
    return best


def profile(workload, backend_name):
    from fastnet.backends import get_backend
    from fastnet.optim import SGD

    backend = get_backend(backend_name)
    net = make_fastnet_net(workload, backend)
    x, t = (backend.asarray(a) for a in make_data(workload))
    optimizer = SGD(lr=LEARNING_RATE)
    for _ in range(3):
        optimizer.update(net.params, net.gradient(x, t))
    rows = [("whole step", best_of(lambda: optimizer.update(net.params, net.gradient(x, t))))]
    # Replays the net's own forward (fusion included) layer by layer, keeping each input.
    layers = list(net.layers.items())
    inputs, i, h = [], 0, x
    while i < len(layers):
        name, layer = layers[i]
        nxt = layers[i + 1][1] if i + 1 < len(layers) else None
        fused = net.fuse and type(nxt).__name__ == "Relu" and hasattr(layer, "forward_relu")
        inputs.append((name + ("+" + layers[i + 1][0] if fused else ""), layer, nxt if fused else None, h))
        h = layer.forward_relu(h, nxt) if fused else layer.forward(h)
        i += 2 if fused else 1
    for label, layer, relu, h_in in inputs:
        fwd = (lambda l=layer, r=relu, a=h_in: l.forward_relu(a, r)) if relu else (lambda l=layer, a=h_in: l.forward(a))
        rows.append((f"forward  {label}", best_of(fwd)))
    rows.append(("forward  loss", best_of(lambda: net.lastLayer.forward(h, t))))
    rows.append(("backward loss", best_of(lambda: net.lastLayer.backward(1))))
    dout = net.lastLayer.backward(1)
    for name, layer in reversed(layers):
        rows.append((f"backward {name}", best_of(lambda l=layer, d=dout: l.backward(d))))
        dout = layer.backward(dout)
    grads = net.gradient(x, t)
    rows.append(("SGD update", best_of(lambda: optimizer.update(net.params, grads))))
    return rows


def main(names):
    for name in names or [n for n, w in WORKLOADS.items() if w.train]:
        workload = WORKLOADS[name]
        table = {b: profile(workload, b) for b in ("numpy", "numba")}
        print(f"\n{workload.description}  (best of many runs, ms)")
        print(f"  {'':<30}{'numpy':>10}{'numba':>10}")
        for (label, a), (_, b) in zip(table["numpy"], table["numba"]):
            print(f"  {label:<30}{a * 1e3:10.3f}{b * 1e3:10.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
