"""Write Painterly's embedded VGG-19 weights as a file neural-style-pt (``neural-style`` on PyPI) loads.

    .venv/bin/python benchmarks/convert_weights_for_neural_style.py [--out PATH] [--no-verify]

What neural-style-pt 0.5.7 expects (read from its installed ``neural_style/loader/CaffeLoader.py``):

* ``-model_file PATH`` is passed through ``str(PATH).lower()`` and the *whole path* picks the
  architecture: it must contain "vgg" and "19", and must not contain "pruning", "fcn32s" or "sod"
  (those are tested first and select other VGG-16 variants).  Its own download is
  ``vgg19-d01eb7cb.pth``; ours is written as ``vgg19-painterly-embedded.pth``.
* It builds torchvision's ``VGG`` layout (``features`` + a 3-layer ``classifier``) and calls
  ``load_state_dict(torch.load(PATH))``: keys are torchvision's ``features.N.weight`` /
  ``features.N.bias``.  The classifier is required unless ``-disable_check`` is given
  (``strict=False``); we have no classifier, so neural-style must be run with ``-disable_check``.
  Because ``strict=False`` would also accept a file with wrong key names silently, this script
  checks the keys and shapes against neural-style's own layer builder and compares its features with
  our engine's on a random image.
* Preprocessing is Caffe's (BGR, mean pixel 103.939/116.779/123.68 subtracted), which is what the
  embedded weights were trained with; neural-style scales pixels to 0-256 rather than 0-255, a 0.4%
  difference in input contrast that does not change timings.
* ``torch.load`` is called without ``weights_only``; since PyTorch 2.6 that means weights-only, so
  the file must be a plain dict of tensors (it is).
"""

from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_OUT = ROOT / "benchmarks" / "models" / "vgg19-painterly-embedded.pth"
# neural-style-pt's modelSelector tests these substrings of the lower-cased path, in this order.
_OTHER_ARCHITECTURES = ("pruning", "fcn32s", "sod")
NEURAL_STYLE_FLAGS = ("-model_file", "{path}", "-disable_check")


def check_model_path(path: Path) -> None:
    """Raise ValueError if neural-style-pt would not pick VGG-19 for this path."""
    text = str(path).lower()
    if "vgg" not in text or "19" not in text:
        raise ValueError(
            f"neural-style-pt only recognises VGG-19 when the path contains 'vgg' and '19': {path}"
        )
    for word in _OTHER_ARCHITECTURES:
        if word in text:
            raise ValueError(
                f"the path contains {word!r}, which neural-style-pt takes for another architecture: {path}"
            )


def converted_state_dict() -> OrderedDict[str, object]:
    """The embedded weights under torchvision ``features.N`` names, as float32 tensors."""
    from engine.weights import load_weights, state_dict

    weights = load_weights("default")
    if weights.preprocessing.name != "caffe":
        raise RuntimeError(
            f"expected Caffe preprocessing for the embedded weights, got {weights.preprocessing}"
        )
    state = state_dict(weights, naming="torchvision")
    # Own the storage (the engine's tensors are shared through its load cache).
    return OrderedDict((key, value.float().clone()) for key, value in state.items())


def convert(out: Path = DEFAULT_OUT, *, force: bool = False, verify: bool = True) -> Path:
    """Write the file (unless it exists and ``force`` is false) and, optionally, verify it."""
    import torch

    out = Path(out).resolve()
    check_model_path(out)
    if out.exists() and not force:
        print(f"{out} already exists (use --force to rewrite it)")
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        state = converted_state_dict()
        tmp = out.with_name(out.name + ".tmp")
        torch.save(state, tmp)
        tmp.replace(out)
        size_mib = out.stat().st_size / 2**20
        print(f"wrote {len(state) // 2} conv layers ({size_mib:.0f} MiB) to {out}")
    if verify:
        verify_file(out)
    return out


def verify_file(path: Path) -> None:
    """Check ``path`` the way neural-style-pt will read it, and against our engine's features."""
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        from neural_style.loader.CaffeLoader import buildSequential, channel_list
    except ImportError:
        print("neural-style is not installed: checked only that the file loads with weights_only=True")
        return
    features = buildSequential(channel_list["VGG-19"], "avg")
    expected = {f"features.{key}": value.shape for key, value in features.state_dict().items()}
    got = {key: tuple(value.shape) for key, value in state.items()}
    if set(got) != set(expected):
        raise RuntimeError(
            f"key mismatch: missing {sorted(set(expected) - set(got))[:4]}, "
            f"unexpected {sorted(set(got) - set(expected))[:4]}"
        )
    bad = [key for key in got if got[key] != tuple(expected[key])]
    if bad:
        raise RuntimeError(f"shape mismatch for {bad[:4]}")
    features.load_state_dict({key.removeprefix("features."): value for key, value in state.items()})
    features.eval()

    from engine.params import Pooling
    from engine.vgg import VGGFeatures
    from engine.weights import load_weights

    weights = load_weights("default")
    ours = VGGFeatures(weights, Pooling.AVERAGE, "relu5_1").eval()
    generator = torch.Generator().manual_seed(0)
    rgb = torch.rand(1, 3, 64, 48, generator=generator)
    with torch.no_grad():
        mine = ours(rgb, {"relu5_1"})["relu5_1"]
        # relu5_1 is features[29] in torchvision's layout; neural-style is fed preprocessed input.
        theirs = features[:30](weights.preprocessing(rgb))
    error = float((mine - theirs).abs().max() / mine.abs().max().clamp_min(1e-12))
    if error > 1e-4:
        raise RuntimeError(f"neural-style's relu5_1 differs from ours by {error:.2e} (relative)")
    print(
        f"verified {path.name}: {len(state)} tensors match neural-style-pt's VGG-19 'features' keys and "
        f"shapes; relu5_1 agrees with Painterly's to {error:.1e} (relative max). "
        f"Use: neural-style -model_file {path} -disable_check ..."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output file (default {DEFAULT_OUT})")
    parser.add_argument("--force", action="store_true", help="rewrite the file if it exists")
    parser.add_argument("--no-verify", action="store_true", help="skip the key, shape and feature checks")
    args = parser.parse_args(argv)
    try:
        convert(args.out, force=args.force, verify=not args.no_verify)
    except (ValueError, RuntimeError) as error:
        print(f"convert_weights_for_neural_style: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
