"""The run engine in small parts, each with one job.

- ``tensors``: numpy images to and from (1, 3, H, W) tensors, resizing.
- ``network``: the VGG-19 feature extractor placed on a device in a precision.
- ``targets``: what the losses aim at (style Gram matrices, content features), whole or in tiles.
- ``steps``: the record a stepper yields per iteration, and how a level ends.
- ``lbfgs``: the L-BFGS stepper with its safeguards (line-searched first step, overshoot undo).
- ``adam``: the Adam steppers, on the whole image and in moving tiles.
- ``fallback``: one pyramid level, with the memory plan and the out-of-memory ladder.

engine.stylize drives them level by level and turns their steps into progress records.
"""
