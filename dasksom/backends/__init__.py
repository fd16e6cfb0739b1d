"""The array libraries: NumPy or CuPy dispatch, moving arrays to the host, CUDA and its memory.

The lowest layer: it imports nothing else from dasksom, and nothing here imports CuPy until a
function is handed a CuPy array or asked about a GPU.
"""
