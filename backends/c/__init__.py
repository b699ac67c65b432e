"""C backend: standalone C99 for microcontrollers (static arena, const weights, int8 kernels)."""
