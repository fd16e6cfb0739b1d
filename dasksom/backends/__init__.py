"""The array libraries: NumPy or CuPy dispatch, compute and storage types, CUDA and its memory.

- :mod:`~dasksom.backends.arrays`: which array module an array belongs to, moving arrays to the
  host, the float type the distances run in, and the CPU's score-block size;
- :mod:`~dasksom.backends.cuda`: whether a GPU is there, its free memory, and row blocks sized
  for it;
- :mod:`~dasksom.backends.devices`: the device choices (``"cpu"``, ``"gpu"``).

The lowest layer: it imports nothing else from dasksom, and nothing here imports CuPy until a
function is handed a CuPy array or asked about a GPU.
"""
