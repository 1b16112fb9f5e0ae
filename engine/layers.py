"""VGG-19's convolutional part as a table: every layer's name, width and stride, in forward order.

The one description of the network's geometry; the network itself (engine.vgg), the memory
estimate, the tiles and the weights checks all read it. No torch here.
"""

from __future__ import annotations

# Convolutions per block and each block's output channels.
_BLOCKS = ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))

# Layer names in forward order: conv1_1, relu1_1, conv1_2, relu1_2, pool1, conv2_1, ...
VGG19_LAYERS: tuple[str, ...] = tuple(
    name
    for block, (convs, _) in enumerate(_BLOCKS, start=1)
    for name in (
        *(n for i in range(1, convs + 1) for n in (f"conv{block}_{i}", f"relu{block}_{i}")),
        f"pool{block}",
    )
)
CONV_LAYERS: tuple[str, ...] = tuple(name for name in VGG19_LAYERS if name.startswith("conv"))


def _block(name: str) -> int:
    return int(name[4] if name.startswith("pool") else name[-3])


# Output channels of every layer, and of the 16 convolutions in order.
CHANNELS: dict[str, int] = {name: _BLOCKS[_block(name) - 1][1] for name in VGG19_LAYERS}
VGG19_WIDTHS: tuple[int, ...] = tuple(CHANNELS[name] for name in CONV_LAYERS)
# How many input pixels one position of the layer's output steps over.
STRIDE: dict[str, int] = {
    name: 2 ** (_block(name) - (0 if name.startswith("pool") else 1)) for name in VGG19_LAYERS
}
# The deepest stride (relu5_x): sizes and tile offsets that are multiples of it map to whole positions.
DEEPEST_STRIDE = max(STRIDE[name] for name in VGG19_LAYERS if not name.startswith("pool"))
# Input channels of every convolution: the RGB image, else the previous convolution's output.
IN_CHANNELS: dict[str, int] = {
    name: 3 if index == 0 else CHANNELS[CONV_LAYERS[index - 1]] for index, name in enumerate(CONV_LAYERS)
}
# Parameters (3 x 3 weights and biases) of every convolution.
CONV_PARAMETERS: dict[str, int] = {
    name: CHANNELS[name] * IN_CHANNELS[name] * 9 + CHANNELS[name] for name in CONV_LAYERS
}
