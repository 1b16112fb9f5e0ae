"""Painterly's command line: the same engine as the window, without Qt.

Exit codes: 0 done; 2 bad input or usage (one line on stderr); 3 the picture could not
be saved where asked and went to a recovery file (its path on stderr); 130 interrupted
(the current image is saved); 1 internal error or a run that could not finish.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from engine.text import printable

EXIT_OK, EXIT_INTERNAL, EXIT_INPUT, EXIT_RECOVERED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

log = logging.getLogger("painterly")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, as every other input error."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"painterly: {printable(message)} (see --help)\n")


def _number_list(text: str) -> tuple[float, ...]:
    try:
        numbers = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if not all(math.isfinite(n) and n >= 0 for n in numbers):
        raise argparse.ArgumentTypeError(f"expected numbers of 0 or more, got {text!r}")
    return numbers


def _file_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("the file name is empty")
    return text


def _whole_number(text: str) -> int:
    """An integer exactly as written: a seed above 2**53 must not pass through a float."""
    try:
        return int(text.strip().replace("_", ""), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def _count(text: str) -> int:
    number = _whole_number(text)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or a positive whole number, got {text!r}")
    return number


def _dpi(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 1 <= value <= 10_000):
        raise argparse.ArgumentTypeError(f"expected a print resolution from 1 to 10000 dpi, got {text!r}")
    return value


def _layer_list(text: str) -> tuple[tuple[str, float], ...]:
    """'relu1_1:1,relu2_1:0.5' or 'relu4_2' (weight 1)."""
    pairs = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, weight = part.partition(":")
        try:
            pairs.append((name.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise argparse.ArgumentTypeError(f"bad layer weight in {part!r}") from None
    return tuple(pairs)


_UNITS_PER_INCH = {"in": 1.0, "inch": 1.0, "inches": 1.0, "cm": 2.54, "mm": 25.4}


def _print_length(text: str) -> float:
    """'30cm', '12in', '300mm' -> inches."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-z]+)\s*", text.lower())
    if not match or match.group(2) not in _UNITS_PER_INCH:
        raise argparse.ArgumentTypeError(f"expected a length like 30cm, 12in or 300mm, got {text!r}")
    inches = float(match.group(1)) / _UNITS_PER_INCH[match.group(2)]
    if not (math.isfinite(inches) and inches > 0):
        raise argparse.ArgumentTypeError(f"expected a length above zero, got {text!r}")
    return inches


def _level_list(text: str) -> tuple[tuple[int, int], ...]:
    """'256:200,512:100' -> ((256, 200), (512, 100))."""
    levels = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        size, _, iterations = part.partition(":")
        try:
            levels.append((_whole_number(size), _whole_number(iterations)))
        except (ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(
                f"expected SIZE:ITERATIONS pairs like 256:200,512:100, got {part!r}"
            ) from None
    if not levels:
        raise argparse.ArgumentTypeError(f"expected SIZE:ITERATIONS pairs like 256:200,512:100, got {text!r}")
    return tuple(levels)


def build_parser() -> argparse.ArgumentParser:
    from engine import __version__
    from engine.params import DeviceChoice, Optimizer
    from engine.presets import PRESETS

    parser = _Parser(prog="painterly", description="Repaint a photo in the style of paintings.")
    parser.add_argument("--version", action="version", version=f"Painterly {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser(
        "stylize", help="repaint a photo", description="Repaint a photo in a painting's style."
    )
    run.add_argument("--content", type=_file_name, metavar="C", help="the photo to repaint")
    run.add_argument(
        "--style",
        action="append",
        type=_file_name,
        metavar="S",
        help="a painting (repeat for several)",
    )
    run.add_argument(
        "--blend", type=_number_list, metavar="W,W", help="relative weight of each style, e.g. 0.7,0.3"
    )
    run.add_argument(
        "--mask",
        action="append",
        type=_file_name,
        metavar="M",
        help="where the matching --style goes: white there, grey partly, black not (one per --style)",
    )
    run.add_argument(
        "--style-mask",
        action="append",
        type=_file_name,
        metavar="M",
        help="which part of the matching painting its style comes from (one per --style; 'none': all)",
    )
    run.add_argument("--out", required=True, metavar="O", help="output file: .png .jpg .webp .tif")
    run.add_argument("--preset", default="default", choices=sorted(PRESETS), help="the recipe to start from")
    run.add_argument(
        "--continue",
        dest="continue_from",
        type=_file_name,
        metavar="RESULT",
        help="continue a result Painterly made from its recipe and picture (more iterations, larger --size)",
    )
    run.add_argument(
        "--resume",
        dest="resume_from",
        type=_file_name,
        metavar="RESULT",
        help="go on with a stopped run exactly where it stopped (its state is saved beside the result)",
    )
    run.add_argument("--size", type=_whole_number, metavar="PX", help="long edge of the output in pixels")
    run.add_argument(
        "--print-size",
        type=_print_length,
        metavar="LENGTH",
        help="long edge of the print (30cm, 12in); sets --size",
    )
    run.add_argument("--dpi", type=_dpi, metavar="N", help="print resolution for --print-size (default 300)")
    run.add_argument(
        "--iterations", type=_whole_number, metavar="N", help="optimisation steps, all levels together"
    )
    run.add_argument(
        "--start-size", type=_whole_number, metavar="PX", help="long edge of the first coarse-to-fine level"
    )
    run.add_argument(
        "--levels", type=_level_list, metavar="PX:N,...", help="explicit levels, e.g. 256:200,512:80"
    )
    run.add_argument("--no-coarse-to-fine", action="store_true", help="optimise at the output size only")
    run.add_argument(
        "--tile-size", type=_whole_number, metavar="PX", help="optimise in tiles of this size (0 = automatic)"
    )
    run.add_argument(
        "--optimizer", choices=[o.value for o in Optimizer], help="L-BFGS (sharper) or Adam (leaner)"
    )
    run.add_argument("--learning-rate", type=float, metavar="X", help="Adam step size (image in 0..1 units)")
    run.add_argument(
        "--init", metavar="content|noise|draft|PATH", help="starting image (draft: the instant draft)"
    )
    run.add_argument(
        "--colors",
        choices=["painting", "photo", "match"],
        help="whose colours: the painting's, the photo's (luminance only), or the painting recoloured",
    )
    run.add_argument(
        "--photo-colors",
        type=float,
        metavar="X",
        help="0..1: after the run, blend this much of the photo's colour into the result",
    )
    run.add_argument(
        "--strength",
        type=float,
        metavar="X",
        help="0..1, how far toward the painting (1: the recipe's own balance, 0: the photo)",
    )
    run.add_argument(
        "--content-weight", type=float, metavar="X", help="how strongly the photo's layout holds"
    )
    run.add_argument(
        "--style-weight", type=float, metavar="X", help="how strongly the painting's texture wins"
    )
    run.add_argument("--tv-weight", type=float, metavar="X", help="smoothing of pixel noise")
    run.add_argument("--content-layers", type=_layer_list, metavar="L[:W],...", help="e.g. relu4_2")
    run.add_argument("--style-layers", type=_layer_list, metavar="L[:W],...", help="e.g. relu1_1:1,relu2_1:1")
    run.add_argument("--pooling", choices=["avg", "max"], help="VGG pooling (Gatys used avg)")
    run.add_argument("--style-scale", type=float, metavar="X", help="style image size relative to the output")
    run.add_argument(
        "--device", choices=[d.value for d in DeviceChoice], help="auto: CUDA, then MPS, then CPU"
    )
    run.add_argument(
        "--precision", choices=["auto", "float32", "bfloat16", "float16"],
        help="network precision; auto: bfloat16 where this CPU runs it faster, else float32",
    )
    run.add_argument(
        "--seed",
        type=_whole_number,
        metavar="N",
        help="seed of the start's noise, from the photo too (same seed, same image)",
    )
    run.add_argument("--max-seconds", type=float, metavar="T", help="stop after T seconds and save")
    run.add_argument(
        "--save-every", type=_count, default=0, metavar="N", help="also save every N iterations"
    )
    run.add_argument("--weights", metavar="default|torchvision|PATH", help="VGG-19 weights to use")
    run.add_argument("--bit-depth", type=int, choices=[8, 16], default=8, help="16 for 16-bit PNG or TIFF")
    run.add_argument(
        "--embed",
        choices=["names", "paths", "none"],
        default="names",
        help="what the saved file records of the inputs: file names and hashes (default), full paths, "
        "or no recipe at all",
    )
    run.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    run.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    run.add_argument("--quiet", action="store_true", help="no progress bar")

    _add_variations_parser(sub)

    info = sub.add_parser("info", help="print the recipe stored in an image Painterly made")
    info.add_argument("file")
    info.add_argument("--json", action="store_true", help="print the raw recipe as JSON")

    sub.add_parser("presets", help="list the presets")
    sub.add_parser("devices", help="list the compute devices")
    return parser


# Iterations of a continued run when --iterations is not given: enough to settle an upscale.
CONTINUE_ITERATIONS = 50


def params_from_args(args: argparse.Namespace, base: Any = None) -> Any:
    """The job's parameters: ``base`` (by default the preset's) changed by every flag given."""
    from engine.errors import InputError
    from engine.params import InitMode
    from engine.presets import get_preset

    changes: dict[str, Any] = {}
    # Flags named exactly like their StyleParams field; None means "not given, keep the preset's".
    same_name = (
        "size", "iterations", "optimizer", "learning_rate", "content_weight", "style_weight", "tv_weight",
        "content_layers", "style_layers", "pooling", "style_scale", "device", "precision", "seed",
        "max_seconds", "weights", "start_size", "levels", "tile_size", "dpi", "strength", "colors",
        "photo_colors",
    )  # fmt: skip
    changes.update({name: getattr(args, name) for name in same_name if getattr(args, name) is not None})
    if args.no_coarse_to_fine:
        changes["coarse_to_fine"] = False
    if args.print_size is not None:
        if args.size is not None:
            raise InputError("give either --size or --print-size, not both")
        changes.setdefault("dpi", 300.0)
        changes["size"] = print_pixels(args.print_size, changes["dpi"])
    if args.init is not None:
        if args.init in (InitMode.CONTENT.value, InitMode.NOISE.value, InitMode.DRAFT.value):
            changes["init"] = args.init
        else:
            changes["init"] = InitMode.IMAGE
            changes["init_image"] = args.init
    return (base if base is not None else get_preset(args.preset).params).replace(**changes)


def job_from_args(args: argparse.Namespace) -> Any:
    """The job the flags describe; with --continue, the result's own job continued from its picture."""
    from engine.errors import InputError
    from engine.params import InitMode, StyleJob

    if args.resume_from is not None:
        return _resumed_job(args)
    if args.continue_from is None:
        if not args.content or not args.style:
            raise InputError("give the photo with --content and at least one painting with --style")
        params = params_from_args(args)
        styles = tuple(args.style)
        return StyleJob(
            content=Path(args.content), styles=styles, params=params, blend=_blend(args.blend),
            masks=tuple(args.mask or ()), style_masks=_style_masks(args.style_mask),
        )  # fmt: skip
    from engine.metadata import read_recipe
    from engine.recipe import job_from_recipe, recorded_input

    source = Path(args.continue_from)
    recipe = read_recipe(source)
    previous = job_from_recipe(recipe, source=source)
    if args.init is not None:
        raise InputError("--continue starts from the result itself; leave out --init")
    params = params_from_args(args, base=previous.params)
    # One level at the asked size, starting from the result (resized to it when the size changed).
    continued = {"init": InitMode.IMAGE, "init_image": str(source), "coarse_to_fine": False, "levels": ()}
    if args.iterations is None:
        continued["iterations"] = CONTINUE_ITERATIONS
    # A result saved with file names only (--embed names) finds its inputs beside it.
    beside = source.parent
    if args.content:
        content = Path(args.content)
    else:
        content = recorded_input(recipe, "content", previous.content, beside=beside)
    styles = tuple(args.style) if args.style else tuple(
        recorded_input(recipe, "styles", path, index, beside) for index, path in enumerate(previous.styles)
    )
    blend = _blend(args.blend) or (previous.blend if len(styles) == len(previous.blend) else ())
    # The result's own masks go on with it, found as its inputs are, unless new ones are given.
    masks = tuple(args.mask) if args.mask else tuple(
        recorded_input(recipe, "masks", path, index, beside) for index, path in enumerate(previous.masks)
    )
    style_masks = _style_masks(args.style_mask) if args.style_mask else tuple(
        None if path is None else recorded_input(recipe, "style_masks", path, index, beside)
        for index, path in enumerate(previous.style_masks)
    )
    if len(styles) != len(previous.styles):
        # Another number of paintings: the result's regions do not say where the new ones go.
        masks = masks if args.mask else ()
        style_masks = style_masks if args.style_mask else ()
    return StyleJob(
        content=content, styles=styles, params=params.replace(**continued), blend=blend, masks=masks,
        style_masks=style_masks,
    )  # fmt: skip


# What a resumed run may change: nothing that shapes the pixels up to the stop (engine.resume).
_RESUME_FREE_FLAGS = ("max_seconds", "device", "dpi", "photo_colors")


def _resumed_job(args: argparse.Namespace) -> Any:
    """The stopped run's own job, from the recipe of its result (``--resume``)."""
    from engine.errors import InputError
    from engine.metadata import read_recipe
    from engine.params import StyleJob
    from engine.recipe import job_from_recipe, recorded_input

    if args.continue_from is not None:
        raise InputError("give either --resume or --continue, not both")
    shaping = ("content", "style", "mask", "style_mask", "init", "size", "print_size", "iterations",
               "start_size", "levels", "optimizer", "learning_rate", "content_weight", "style_weight",
               "tv_weight", "content_layers", "style_layers", "pooling", "style_scale", "precision", "seed",
               "weights", "tile_size", "strength", "colors", "blend")  # fmt: skip
    given = [name for name in shaping if getattr(args, name, None) not in (None, False, [], ())]
    if given or args.preset != "default" or args.no_coarse_to_fine:
        flags = ", ".join("--" + name.replace("_", "-") for name in given) or "--preset/--no-coarse-to-fine"
        raise InputError(f"--resume goes on with the stopped run's own inputs and settings; drop {flags}")
    source = Path(args.resume_from)
    recipe = read_recipe(source)
    previous = job_from_recipe(recipe, source=source)
    changes = {name: getattr(args, name) for name in _RESUME_FREE_FLAGS if getattr(args, name) is not None}
    beside = source.parent
    content = recorded_input(recipe, "content", previous.content, beside=beside)
    styles = tuple(
        recorded_input(recipe, "styles", path, index, beside) for index, path in enumerate(previous.styles)
    )
    masks = tuple(
        recorded_input(recipe, "masks", path, index, beside) for index, path in enumerate(previous.masks)
    )
    style_masks = tuple(
        None if path is None else recorded_input(recipe, "style_masks", path, index, beside)
        for index, path in enumerate(previous.style_masks)
    )
    return StyleJob(
        content=content, styles=styles, params=previous.params.replace(**changes), blend=previous.blend,
        masks=masks, style_masks=style_masks,
    )  # fmt: skip


def _style_masks(given: Sequence[str] | None) -> tuple[Path | None, ...]:
    """--style-mask values: 'none' takes the style from the whole painting."""
    return tuple(None if text.strip().lower() == "none" else Path(text) for text in given or ())


def print_pixels(inches: float, dpi: float) -> int:
    """The long edge in pixels of a print ``inches`` long at ``dpi``, within what a run can make."""
    from engine.errors import InputError
    from engine.params import SIZE_LIMITS

    pixels = round(inches * dpi)
    low, high = SIZE_LIMITS
    if not low <= pixels <= high:
        raise InputError(
            f"--print-size at {dpi:g} dpi gives a long edge of {pixels} px; "
            f"Painterly makes {low} to {high} px (change the print size or --dpi)"
        )
    return pixels


class ProgressBar:
    """One updating line on a terminal: bar, iteration, speed, elapsed, ETA and loss."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last_draw = 0.0

    def update(self, record: Any, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_draw < 0.1:
            return
        self.last_draw = now
        rate = record.iteration / record.elapsed if record.elapsed > 0 else 0.0
        remaining = (record.total - record.iteration) / rate if rate > 0 else math.inf
        width = 24
        filled = int(width * record.fraction)
        level = f" L{record.level}/{record.levels}" if record.levels > 1 else ""
        line = (
            f"\r[{'#' * filled}{'.' * (width - filled)}] {record.iteration}/{record.total}{level} "
            f"{rate:.2f} it/s  {_clock(record.elapsed)} elapsed  ETA {_clock(remaining)}  "
            f"loss {record.losses.get('total', float('nan')):.4g}"
        )
        self.stream.write(line.ljust(100))
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class _Stdout:
    """JSON lines on stdout; a reader that went away (``| head``) must not cost the picture."""

    closed = False

    @classmethod
    def emit(cls, payload: dict[str, Any]) -> None:
        if cls.closed:
            return
        try:
            sys.stdout.write(json.dumps(payload) + "\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError, OSError):
            cls.closed = True
            # Python would report the broken pipe again when it flushes stdout at exit.
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


_emit = _Stdout.emit


def _say(text: str) -> None:
    """One line on stderr that must never raise (it may run inside a signal handler)."""
    with contextlib.suppress(Exception):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()


class _Interrupts:
    """Ctrl-C, SIGTERM and SIGHUP: stop cleanly and never lose a finished picture.

    While the run goes, the first signal asks the engine to stop after the current iteration (the
    picture so far is saved); a second quits at once without saving. While the picture is being
    saved, the first signal is held until the save is done; a second aborts the save, and the file
    that was there before stays as it was (the save is atomic).
    """

    # SIGHUP: a closed terminal ends the run the same way, keeping the picture.
    SIGNALS = (signal.SIGINT, signal.SIGTERM, *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()))

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.saving = False
        self.held = 0
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupts:
        for number in self.SIGNALS:
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    @property
    def interrupted(self) -> bool:
        return self.stop.is_set() or self.held > 0

    def _handle(self, signum: int, frame: Any) -> None:
        if self.saving:
            self.held += 1
            if self.held > 1:
                raise KeyboardInterrupt
            _say("painterly: saving the finished picture first; interrupt again to abort the save")
            return
        if self.stop.is_set():
            raise KeyboardInterrupt
        self.stop.set()
        _say("painterly: stopping after this iteration and saving; interrupt again to quit without saving")


def run_stylize(args: argparse.Namespace) -> int:
    from engine.encode import check_encodable
    from engine.imageio import load_image
    from engine.params import Method
    from engine.plan import check_output_shape, check_style_shape, output_size, plan_levels
    from engine.records import Finished, StopReason
    from engine.regions import check_style_mask, load_regions
    from engine.results import OutputSpec, SaveError, check_output, job_inputs, output_path, save_result
    from engine.stylize import stylize
    from engine.weights import load_weights

    job = job_from_args(args)
    params = job.params
    spec = OutputSpec(
        path=output_path(args.out),
        bit_depth=args.bit_depth,
        dpi=params.dpi,
        overwrite=args.overwrite,
        embed=args.embed,
    )
    inputs = job_inputs(job)
    total = sum(level.iterations for level in plan_levels(params))
    save_every = args.save_every
    intermediates = range(save_every, total + 1, save_every) if save_every else range(0)
    check_output(spec, inputs=inputs, intermediates=intermediates)
    resume = None
    if args.resume_from is not None:
        from engine.resume import load_resume_point, resume_path

        resume = load_resume_point(resume_path(Path(args.resume_from)))
    # Validate every input file now, so a bad one is reported before any work starts.
    images = [job.content, *job.styles, *([Path(params.init_image)] if params.init_image else [])]
    masks = [*job.masks, *(path for path in job.style_masks if path is not None)]
    decoded = {path: load_image(path) for path in [*images, *masks]}
    content = decoded[job.content]
    check_output_shape(content.size, params, job.content)
    for style in job.styles:
        check_style_shape(decoded[style].size, style)
    for mask in load_regions(job.masks, job.style_masks, decoded).style_masks:
        if mask is not None:
            check_style_mask(mask)
    check_encodable(
        spec.path, size=output_size(content.size, params.size), bit_depth=spec.bit_depth, dpi=spec.dpi
    )
    if params.method is Method.INSTANT:
        from engine.instant import WEIGHTS_ID, find_models

        find_models()  # a missing or wrong network file is said before anything runs
        weights, weights_id = None, WEIGHTS_ID
        _report_instant(args, output_size(content.size, params.size))
    else:
        weights = load_weights(params.weights)
        weights_id = weights.id
        _report_memory(args, params, content.size)
    hashes = {str(path): image.sha256 for path, image in decoded.items()}

    bar = ProgressBar(sys.stderr) if (not args.json and not args.quiet and sys.stderr.isatty()) else None
    finished: Finished | None = None
    with _Interrupts() as interrupts:
        try:
            records = stylize(
                job, should_stop=interrupts.stop.is_set, weights=weights, decoded=decoded,
                preview_every=save_every, resume=resume,
            )  # fmt: skip
            for record in records:
                if isinstance(record, Finished):
                    finished = record
                    break
                _report_progress(args, bar, record)
                if save_every and record.iteration % save_every == 0:
                    _save_intermediate(job, record, spec, inputs, hashes, weights_id)
        finally:
            if bar:
                bar.close()
        assert finished is not None
        interrupts.saving = True
        try:
            outcome = save_result(finished, spec, inputs=inputs)
        except SaveError as error:
            print(f"painterly: {error}", file=sys.stderr)
            return EXIT_INTERNAL
        state_file = _save_resume_state(finished, outcome.path, spec.overwrite)
    saved = outcome.path
    summary = {
        "event": "done",
        "output": str(saved),
        "recovered": outcome.recovered,
        "iterations": finished.iterations,
        "seconds": round(finished.seconds, 3),
        "device": finished.device,
        "reason": finished.reason.value,
        "losses": {name: _finite(value) for name, value in finished.losses.items()},
        "weights": finished.weights_id,
        "preset": params.preset,
        "dpi": spec.dpi,
        "resume": str(state_file) if state_file else None,
    }
    if args.json:
        _emit(summary)
    elif not args.quiet:
        _say(
            f"saved {printable(saved)} ({finished.iterations} iterations, {finished.seconds:.1f} s, "
            f"{finished.device}, {finished.reason.value})"
        )
    if state_file and not args.json and not args.quiet:
        _say(
            f"painterly: to go on from iteration {finished.iterations}: "
            f"main.py stylize --resume {printable(saved)} --out NEW_NAME"
        )
    if outcome.recovered:
        _say(f"painterly: {outcome.problem}; the picture was saved to {printable(saved)} instead")
        return EXIT_RECOVERED
    if finished.reason is StopReason.STOPPED or interrupts.interrupted:
        return EXIT_INTERRUPTED
    if finished.reason in (StopReason.NUMERICAL_ERROR, StopReason.OUT_OF_MEMORY):
        _say(f"painterly: {printable(finished.message)} (image saved to {printable(saved)})")
        return EXIT_INTERNAL
    return EXIT_OK


def _save_resume_state(finished: Any, saved: Path, overwrite: bool) -> Path | None:
    """Beside a stopped run's result, what ``--resume`` needs; None when there is nothing to resume
    or it could not be written (the picture itself is safe either way)."""
    from engine.errors import InputError
    from engine.resume import resume_path, save_resume_point

    if finished.resume is None:
        return None
    path = resume_path(saved)
    try:
        save_resume_point(finished.resume, path, overwrite=overwrite)
    except InputError as error:
        _say(f"painterly: the run's state for --resume was not saved: {error}")
        return None
    return path


def _blend(blend: tuple[float, ...] | None) -> tuple[float, ...]:
    return blend or ()


def _finite(value: float) -> float | None:
    # JSON has no NaN or infinity: a run stopped by a numerical error still prints standard JSON.
    return value if math.isfinite(value) else None


def _report_progress(args: argparse.Namespace, bar: ProgressBar | None, record: Any) -> None:
    if record.message:
        log.warning(printable(record.message))
        if bar:
            sys.stderr.write("\n" + printable(record.message) + "\n")
    if args.json:
        _emit(
            {
                "event": "progress",
                "iteration": record.iteration,
                "total": record.total,
                "elapsed": round(record.elapsed, 4),
                "level": record.level,
                "levels": record.levels,
                "size": list(record.size),
                "losses": {name: _finite(value) for name, value in record.losses.items()},
            }
        )
    if bar:
        bar.update(record, force=record.iteration == record.total)


def _report_memory(args: argparse.Namespace, params: Any, content_size: tuple[int, int]) -> None:
    """Say before the run whether it fits in memory, and what would make it fit."""
    from engine.device import choose_device
    from engine.memory import plan_memory
    from engine.plan import plan_levels

    device = choose_device(params.device)
    plan = plan_memory(params, content_size, device.device)
    levels = plan_levels(params)
    schedule = " -> ".join(f"{level.size}px x{level.iterations}" for level in levels)
    if args.json:
        _emit(
            {
                "event": "plan",
                "device": device.name,
                "levels": [[level.size, level.iterations] for level in levels],
                "memory_estimate": plan.estimate,
                "memory_available": plan.available,
                "fits": plan.fits,
                "suggestion": plan.suggestion,
                "network": plan.network,
            }
        )
    elif not args.quiet:
        text = f"painterly: {device.name}, {plan.network}; levels {schedule}; memory {plan.describe()}"
        print(text, file=sys.stderr)


def _report_instant(args: argparse.Namespace, size: tuple[int, int]) -> None:
    if args.json:
        _emit({"event": "plan", "method": "instant", "size": list(size), "levels": []})
    elif not args.quiet:
        _say(f"painterly: instant draft at {size[0]} x {size[1]} px")


def _save_intermediate(
    job: Any, record: Any, spec: Any, inputs: Sequence[Path], hashes: dict[str, str], weights_id: str
) -> None:
    """The picture at this iteration, beside the output, with its recipe, under the output's rules."""
    from engine.errors import InputError
    from engine.results import snapshot, write_result

    target = spec.intermediate(record.iteration)
    finished = snapshot(job, record, inputs=hashes, weights_id=weights_id)
    try:
        write_result(finished, target, inputs=inputs)
    except InputError as error:
        # The run goes on: its final picture matters more than one intermediate.
        log.warning("%s (not saving this intermediate image)", error)


def _add_variations_parser(sub: Any) -> None:
    from engine.presets import PRESETS
    from engine.variations import TILE_ITERATIONS, TILE_SIZE

    var = sub.add_parser(
        "variations",
        help="a contact sheet of small pictures under different settings",
        description="Paint the photo small under 4 to 9 different settings (strength, brush size, colours, "
        "preset, seed) and save them as one contact sheet, each tile's settings written under it and its "
        "recipe in the sheet.",
    )
    var.add_argument("--content", required=True, type=_file_name, metavar="C", help="the photo to repaint")
    var.add_argument(
        "--style", required=True, action="append", type=_file_name, metavar="S", help="a painting (repeat)"
    )
    var.add_argument("--blend", type=_number_list, metavar="W,W", help="relative weight of each style")
    var.add_argument("--count", type=_whole_number, default=8, metavar="N", help="how many tiles, 4 to 9")
    var.add_argument("--out", required=True, metavar="O", help="the sheet: .png .jpg .webp .tif")
    var.add_argument(
        "--size", type=_whole_number, default=TILE_SIZE, metavar="PX", help="long edge of each tile"
    )
    var.add_argument(
        "--iterations", type=_whole_number, default=TILE_ITERATIONS, metavar="N", help="iterations per tile"
    )
    var.add_argument("--preset", default="default", choices=sorted(PRESETS), help="the settings to vary")
    var.add_argument("--strength", type=float, metavar="X", help="0..1, the strength to vary from")
    var.add_argument("--colors", choices=["painting", "photo", "match"], help="the colours to vary from")
    var.add_argument("--style-scale", type=float, metavar="X", help="the style scale to vary from")
    var.add_argument("--seed", type=_whole_number, metavar="N", help="the seed to vary from")
    var.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], help="auto: CUDA, MPS, then CPU")
    var.add_argument("--weights", metavar="default|torchvision|PATH", help="VGG-19 weights to use")
    var.add_argument(
        "--embed", choices=["names", "paths", "none"], default="names", help="as for stylize"
    )
    var.add_argument("--overwrite", action="store_true", help="replace the sheet if it exists")
    var.add_argument("--json", action="store_true", help="one JSON object per line on stdout")
    var.add_argument("--quiet", action="store_true", help="no progress lines")


def run_variations(args: argparse.Namespace) -> int:
    """The variations contact sheet (engine.variations, engine.variation_sheet), saved like a result."""
    import itertools

    from engine.device import choose_device
    from engine.imageio import load_image
    from engine.params import StyleJob
    from engine.presets import get_preset
    from engine.results import OutputSpec, SaveError, check_output, job_inputs, output_path, save_result
    from engine.variation_sheet import draw_sheet, layout_for, sheet_recipe, sheet_record
    from engine.variations import (
        Tile,
        VariationsFinished,
        check_count,
        check_tile,
        choose_variations,
        render_variations,
    )

    check_count(args.count)
    check_tile(args.size, args.iterations)
    looks = ("strength", "colors", "style_scale", "seed", "device", "weights")
    changes = {name: getattr(args, name) for name in looks if getattr(args, name) is not None}
    params = get_preset(args.preset).params.replace(**changes)
    job = StyleJob(Path(args.content), tuple(Path(s) for s in args.style), params, _blend(args.blend))
    spec = OutputSpec(path=output_path(args.out), overwrite=args.overwrite, embed=args.embed)
    inputs = job_inputs(job)
    check_output(spec, inputs=inputs)
    decoded = {path: load_image(path) for path in (job.content, *job.styles)}
    instant = _instant_available()
    variations = choose_variations(params, args.count, instant_available=instant)
    result: VariationsFinished | None = None
    with _Interrupts() as interrupts:
        records = render_variations(
            job, variations, size=args.size, iterations=args.iterations, should_stop=interrupts.stop.is_set,
            decoded=decoded,
        )  # fmt: skip
        first = next(records)  # inputs, tile sizes and the networks are checked before this returns
        if args.json:
            _emit({"event": "plan", "count": args.count, "size": args.size, "iterations": args.iterations,
                   "labels": [v.label for v in variations]})  # fmt: skip
        elif not args.quiet:
            device = choose_device(params.device).name
            _say(f"painterly: {args.count} variations at {args.size} px on {device}" + (
                "" if instant else " (no instant network: its variations are left out)"))  # fmt: skip
        for record in itertools.chain([first], records):
            if isinstance(record, Tile):
                _report_tile(args, record)
            elif isinstance(record, VariationsFinished):
                result = record
        assert result is not None
        if not result.tiles:
            _say("painterly: stopped before the first variation was made; nothing saved")
            return EXIT_INTERRUPTED
        names = " + ".join(path.name for path in job.styles)
        title = (
            f"{job.content.name} x {names}: {len(result.tiles)} of {result.count} variations, "
            f"{args.size} px, {args.iterations} iterations"
        )
        image = draw_sheet(result.tiles, result.count, title)
        layout = layout_for(result.tiles, result.count)
        recipe = sheet_recipe(result, layout, spec.embed) if spec.embed_recipe else None
        interrupts.saving = True
        try:
            outcome = save_result(sheet_record(job, result, image), spec, inputs=inputs, recipe=recipe)
        except SaveError as error:
            print(f"painterly: {error}", file=sys.stderr)
            return EXIT_INTERNAL
    saved = printable(outcome.path)
    if args.json:
        _emit({"event": "done", "output": str(outcome.path), "recovered": outcome.recovered,
               "tiles": len(result.tiles), "count": result.count, "seconds": round(result.seconds, 3),
               "reason": result.reason.value, "columns": layout.columns, "rows": layout.rows})  # fmt: skip
    elif not args.quiet:
        _say(f"saved {saved} ({len(result.tiles)} variations in {result.seconds:.1f} s)")
    if outcome.recovered:
        _say(f"painterly: {outcome.problem}; the sheet was saved to {saved} instead")
        return EXIT_RECOVERED
    return EXIT_INTERRUPTED if not result.completed or interrupts.interrupted else EXIT_OK


def _instant_available() -> bool:
    """Whether the instant network can run here (its variations are left out where it cannot)."""
    from engine.errors import InputError

    try:
        from engine.instant import find_models

        find_models()
        import onnxruntime  # noqa: F401
    except (InputError, ImportError):
        return False
    return True


def _report_tile(args: argparse.Namespace, tile: Any) -> None:
    finished = tile.finished
    if args.json:
        _emit({"event": "tile", "index": tile.index, "label": tile.variation.label,
               "changed": list(tile.variation.changed), "iterations": finished.iterations,
               "seconds": round(finished.seconds, 3), "reason": finished.reason.value,
               "losses": {name: _finite(value) for name, value in finished.losses.items()}})  # fmt: skip
    elif not args.quiet:
        _say(f"painterly: {tile.index + 1}/{tile.count} {tile.variation.label} ({finished.seconds:.1f} s)")


def run_info(args: argparse.Namespace) -> int:
    from engine.metadata import read_recipe
    from engine.recipe import format_recipe

    recipe = read_recipe(args.file)
    if args.json:
        # Standard JSON only (no NaN), every non-ASCII and control character escaped.
        print(json.dumps(_standard_json(recipe), indent=2, ensure_ascii=True, allow_nan=False))
    else:
        print(format_recipe(recipe))
    return EXIT_OK


def _standard_json(value: Any) -> Any:
    """``value`` with every number JSON cannot hold (NaN, infinities) replaced by null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _standard_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_standard_json(item) for item in value]
    return value


def run_presets() -> int:
    from engine.presets import PRESETS

    for preset in PRESETS.values():
        print(f"{preset.name:16} {preset.title}\n{'':16} {preset.description}\n")
    return EXIT_OK


def run_devices() -> int:
    from engine.device import available_devices, choose_device

    for choice in available_devices():
        try:
            info = choose_device(choice)
            print(f"{choice.value:6} {info.name}{'  (' + info.notice + ')' if info.notice else ''}")
        except Exception as error:  # noqa: BLE001 - listing must not fail on one device
            print(f"{choice.value:6} unavailable: {error}")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="painterly: %(message)s")
    # Libraries' own warnings (Pillow, tifffile, torch) are for developers: they go to the log,
    # not as extra lines on a terminal whose contract is one line per problem.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.ERROR)
    args = build_parser().parse_args(argv)
    from engine.errors import DeviceError, InputError, PainterlyError

    try:
        if args.command == "stylize":
            return run_stylize(args)
        if args.command == "info":
            return run_info(args)
        if args.command == "variations":
            return run_variations(args)
        if args.command == "presets":
            return run_presets()
        return run_devices()
    except InputError as error:
        print(f"painterly: {error}", file=sys.stderr)
        return EXIT_INPUT
    except PainterlyError as error:
        print(f"painterly: {error}", file=sys.stderr)
        return EXIT_INPUT if isinstance(error, DeviceError) else EXIT_INTERNAL
    except BrokenPipeError:
        # Output piped into `head` and the like: not an error worth a message.
        return EXIT_OK
    except KeyboardInterrupt:
        print("painterly: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except MemoryError:
        print("painterly: ran out of memory; try a smaller --size or fewer, smaller inputs", file=sys.stderr)
        return EXIT_INTERNAL
    except Exception as error:  # noqa: BLE001 - last resort: one line, details in the log
        log.debug("internal error", exc_info=True)
        text = printable(" ".join(f"{type(error).__name__}: {error}".split()))
        print(f"painterly: internal error: {text}", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
