"""Independent implementations of riskengine's model, as a quant would write them without it
(numpy with batched BLAS on a thread pool; JAX ``jit`` with ``lax.scan``): ``roofline.py``
times them beside the engine and prints ``engine_vs_peers=``."""
