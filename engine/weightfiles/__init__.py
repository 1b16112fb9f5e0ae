"""The parts behind ``engine.weights``, each with one job; the rest of the code imports ``engine.weights``.

- ``record``: what every source ends as, ``VGGWeights``, and the input ``Preprocessing`` conventions.
- ``limits``: how much a weights file may make us read, and opening one within that.
- ``hashes``: a file's SHA-256, computed once per process.
- ``torch_file``: PyTorch files (zip or legacy pickle), their declared sizes checked before ``torch.load``.
- ``safetensors_file``: safetensors files, read by hand with every declared size checked first.
- ``matlab_file``: MATLAB 5 files, walked as scipy would read them before scipy does.
- ``matconvnet``: MatConvNet networks (SimpleNN and DagNN) read from a checked MATLAB file.
- ``key_schemes``: state dicts under any supported naming, turned into our conv layer names.
- ``checks``: each tensor as float32, and the 16 convs chaining as VGG-19's.
- ``read``: one user file: its format sniffed, read, checked, and its preprocessing decided.
- ``write``: weights as a state dict or a ``.safetensors`` file.
- ``testnet``: a random VGG-19-shaped network for fast tests.

``engine.weights`` finds the built-in and torchvision weights, keeps the loaded ones for the
process and hands all of this on.
"""
