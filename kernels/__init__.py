"""numba kernels of riskengine, installed as ``riskengine.kernels``.

Importing this package compiles nothing: the CPU and CUDA kernels are built on first use.
"""
