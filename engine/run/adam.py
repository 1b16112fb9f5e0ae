"""The Adam steppers: on the whole image, and over overlapping tiles for images larger than memory."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from engine.guided import windowed_terms
from engine.params import StyleParams
from engine.records import StopReason
from engine.run.lbfgs import Objective
from engine.run.network import Network
from engine.run.steps import (
    Control,
    LevelEnd,
    Step,
    Stepper,
    StepperState,
    StopRequested,
    cpu_copy,
    non_finite_message,
    placed,
)
from engine.run.targets import make_loss
from engine.tiles import tile_grid


def adam_steps(
    x: Tensor,
    objective: Objective,
    params: StyleParams,
    iterations: int,
    control: Control,
    first_iteration: int,
    resume: StepperState | None = None,
    level_ends: bool = True,
) -> Stepper:
    """Adam on the whole image ``x`` (prepared on the device, requiring grad), clamped to [0, 1].

    With ``resume`` it goes on from a stopped run's image and moments. ``level_ends`` False: the
    level goes on after these steps (the float32 finish), and the end carries the state for it."""
    optimizer = torch.optim.Adam(
        [x], lr=params.learning_rate, betas=(params.adam_beta1, params.adam_beta2), eps=params.adam_eps
    )
    evaluated: dict[str, Tensor] = {}

    def closure() -> Tensor:
        if control.should_stop():
            raise StopRequested
        optimizer.zero_grad(set_to_none=True)
        total, terms = objective(x)
        total.backward()
        evaluated["total"] = total.detach()
        evaluated.update({name: value.detach() for name, value in terms.items()})
        return total

    kept = x.detach().cpu().clone()
    earlier = 0
    if resume is not None:
        with torch.no_grad():
            x.copy_(resume.image.to(x.device))
        if resume.optimiser:
            optimizer.state[x] = placed(resume.optimiser, x.device)
        kept, earlier = resume.kept, resume.done

    def state_now(done: int) -> StepperState:
        # Adam's step() evaluates the closure before touching its moments, so between iterations
        # and after a stop inside the closure the state is that of the last complete step.
        moments = cpu_copy(optimizer.state[x]) if optimizer.state else {}
        return StepperState(x.detach().cpu().clone(), kept, {}, moments, earlier + done)

    for step in range(iterations):
        reason = control.end_reason()
        if reason is not None:
            return LevelEnd(x.detach().cpu(), reason, state=state_now(step))
        before = x.detach().clone()
        evaluated.clear()
        try:
            optimizer.step(closure)
        except StopRequested:
            with torch.no_grad():
                x.copy_(before)
            return LevelEnd(x.detach().cpu(), StopReason.STOPPED, state=state_now(step))
        losses = {name: float(value) for name, value in evaluated.items()}
        problem = non_finite_message(losses, first_iteration + step)
        if problem is not None:
            return LevelEnd(kept, StopReason.NUMERICAL_ERROR, problem)
        kept = before.cpu()
        with torch.no_grad():
            x.clamp_(0, 1)
        yield Step(x, kept, losses)
    return LevelEnd(x.detach().cpu(), state=None if level_ends else state_now(iterations))


def tiled_adam_steps(
    image: Tensor,
    network: Network,
    params: StyleParams,
    content_maps: dict[str, Tensor],
    style_terms: list[tuple[nn.Module, float]],
    iterations: int,
    control: Control,
    first_iteration: int,
    seed: int,
    gate: Tensor | None = None,
) -> Stepper:
    """Adam over overlapping tiles whose grid moves every iteration; the image stays on the CPU.

    L-BFGS needs the gradient of the whole image at once, so tiles always use Adam. Each
    iteration sums every tile's gradient over its core (its context margin only informs the
    features) and takes one Adam step for the whole image, so an iteration means the same as
    without tiles. Random grid offsets keep seams from settling anywhere. ``content_maps`` are the
    whole image's content features (engine.run.targets.stitched_features).
    """
    tile = max(64, params.tile_size // 16 * 16)
    height, width = image.shape[-2:]
    x = image.detach().clone().float().cpu()
    kept = x.clone()
    first, second = torch.zeros_like(x), torch.zeros_like(x)
    beta1, beta2, eps, rate = params.adam_beta1, params.adam_beta2, params.adam_eps, params.learning_rate
    generator = torch.Generator().manual_seed(seed)
    for step in range(iterations):
        reason = control.end_reason()
        if reason is not None:
            return LevelEnd(x, reason)
        offset = tuple(16 * int(v) for v in torch.randint(0, tile // 16, (2,), generator=generator))
        grad = torch.zeros_like(x)
        sums = {"content": 0.0, "style": 0.0, "tv": 0.0}
        for part in tile_grid(width, height, tile, offset):  # type: ignore[arg-type]
            if control.should_stop():
                return LevelEnd(x, StopReason.STOPPED)
            y0, y1, x0, x1 = part.crop
            cy0, cy1, cx0, cx1 = part.core_in_crop()
            share = (cy1 - cy0) * (cx1 - cx0) / (width * height)
            content_core = None
            if content_maps:
                whole = part.in_whole_image(width, height)
                content_core = {}
                for name, value in content_maps.items():
                    top, bottom, left, right = whole.feature_window(name, *value.shape[-2:])
                    content_core[name] = value[..., top:bottom, left:right].to(network.device)
            crop = network.prepare(x[..., y0:y1, x0:x1].clone()).requires_grad_(True)
            features = part.core_features(network(crop))
            # Guided terms read their masks over this core (engine.guided); the others are as they are.
            tile_terms = windowed_terms(style_terms, part.in_whole_image(width, height))
            loss_fn = make_loss(network, params, content_core, tile_terms)
            total, weighted = loss_fn(features, crop[..., cy0:cy1, cx0:cx1])
            (share * total).backward()
            assert crop.grad is not None
            core_grad = crop.grad[..., cy0:cy1, cx0:cx1].float().cpu()
            grad[..., y0 + cy0 : y0 + cy1, x0 + cx0 : x0 + cx1] += core_grad
            for name, value in weighted.items():
                sums[name] += share * float(value.detach())
        if gate is not None:
            grad.mul_(gate)  # where no style is painted the photo stays (engine.guided)
        losses = sums | {"total": sum(sums.values())}
        problem = non_finite_message(losses, first_iteration + step)
        if problem is not None:
            return LevelEnd(kept, StopReason.NUMERICAL_ERROR, problem)
        kept = x.clone()
        # Adam by hand: torch's Adam keeps state per tensor, and a tile is a moving window.
        t = step + 1
        first.mul_(beta1).add_(grad, alpha=1 - beta1)
        second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denominator = (second / (1 - beta2**t)).sqrt_().add_(eps)
        x.addcdiv_(first, denominator, value=-rate / (1 - beta1**t)).clamp_(0, 1)
        yield Step(x, kept, losses)
    return LevelEnd(x)
