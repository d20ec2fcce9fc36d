"""Where a training step's time goes: per-layer timing, bytes allocated, and the products' shapes."""
