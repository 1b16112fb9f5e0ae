"""The L-BFGS stepper: one iteration per step, with two safeguards the paper's recipe lacks.

torch's L-BFGS makes its first step 1/|g|_1 long: here a millionth of a grey level per pixel. That
wastes the iteration, and the curvature pair it leaves is so noisy that the step after it can
overshoot (the default preset went 24.9 -> 1.3e6 at iteration 4). So the first step of every
level, and after a restart, is line-searched (strong Wolfe) from a trial that moves pixels by at
most 1% of the range on average. Measured on Tubingen at 512 px: one extra evaluation per level,
loss after 10 iterations 3.8 instead of 8.4, final loss 1.35 instead of 1.37, no overshoot.

Past its first step L-BFGS has no line search (as in neural-style and its descendants), so now
and then a step overshoots by orders of magnitude; it usually recovers, but a preview or a saved
result could be that wild image. So every image shown or kept is one whose loss was measured: a
step is judged by the next evaluation, an overshoot is undone and the curvature history
restarted, and the level's last step is measured once more (one forward pass) before it is kept.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable

import torch
from torch import Tensor

from engine.params import StyleParams
from engine.records import StopReason
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

log = logging.getLogger(__name__)

# Above this first total, L-BFGS optimises the loss divided by it (see lbfgs_loss_scale).
_LARGE_LOSS = 1e3
# An L-BFGS step that multiplies the loss by more than this overshot; it is undone. Ordinary steps
# without a line search change the loss by a few percent to ~2x.
_DIVERGED_FACTOR = 10.0
_FIRST_STEP_MEAN_CHANGE = 0.01
_FIRST_STEP_MAX_EVALUATIONS = 20

# (image) -> (total loss, weighted terms by name), with autograd.
Objective = Callable[[Tensor], tuple[Tensor, dict[str, Tensor]]]


def lbfgs_loss_scale(first_total: float) -> float:
    """The constant L-BFGS's objective is multiplied by, from the level's first total loss.

    Large losses are divided by their first value before L-BFGS sees them. torch's L-BFGS falls
    back to a plain gradient step of length |g| whenever a curvature pair is rejected; with the
    paper's unnormalised losses (around 1e11 for Gatys' convention) that step throws the image to
    infinity. A constant factor does not move the minimum. Losses already near 1 (our normalised
    convention) are left as they are.
    """
    return 1.0 / first_total if math.isfinite(first_total) and first_total > _LARGE_LOSS else 1.0


def diverged(accepted_total: float, new_total: float) -> bool:
    """Whether a step from an image with loss ``accepted_total`` to one with ``new_total`` overshot."""
    return not math.isfinite(new_total) or new_total > _DIVERGED_FACTOR * accepted_total


# L-BFGS knows no bounds; the picture does. Unbounded, a dark painting's run pushed pixels to -0.55
# (tubingen x seated-nude, default preset at 192 px), the clamp before saving cut them, and the saved
# picture's total loss was 1.19 where the run reported 0.62. Projecting (clamping) after each step broke
# L-BFGS's curvature pairs: tubingen x shipwreck at strength 0.5 ended at 2.33 with red blotches where
# the unbounded run ended at 0.24. A smooth penalty on what lies outside 0..1 keeps the history
# consistent: at this weight the saved totals were 0.607 (seated-nude), 0.189 (shipwreck, strength 0.5),
# 0.896 (starry_night), 0.099 (hoovertowernight x the_scream, strength 0.25), against 1.19, 0.236,
# 0.929 and 0.105 unbounded, each within 0.1 % of what the run reported (10x the weight: no better).
OUT_OF_RANGE_WEIGHT = 1000.0


def out_of_range_penalty(x: Tensor) -> Tensor:
    """OUT_OF_RANGE_WEIGHT times the mean square of how far pixels lie outside 0..1 (0 inside)."""
    excess = torch.relu(-x) + torch.relu(x - 1.0)
    return OUT_OF_RANGE_WEIGHT * excess.pow(2).mean()


def lbfgs_steps(
    x: Tensor,
    objective: Objective,
    params: StyleParams,
    iterations: int,
    control: Control,
    first_iteration: int,
    resume: StepperState | None = None,
    level_ends: bool = True,
) -> Stepper:
    """Optimise ``x`` (prepared on the device, requiring grad) for up to ``iterations`` steps.

    ``first_iteration`` is the run-wide number of the first step, for messages. With ``resume``
    the optimiser goes on from a stopped run's state (its image, history and bookkeeping).
    ``level_ends`` False: the level goes on after these steps (the float32 finish), so the last is
    not measured again and the end carries the state to go on from, as a stop there would.
    """
    # One iteration per step() so the caller sees every iteration. Negative tolerances stop
    # torch's L-BFGS from silently ending the run on a flat stretch.
    optimizer = torch.optim.LBFGS(
        [x], lr=1.0, max_iter=1, history_size=params.lbfgs_history, tolerance_grad=-1, tolerance_change=-1
    )
    evaluated: dict[str, Tensor] = {}
    scale: list[float] = []

    def closure() -> Tensor:
        if control.should_stop():
            raise StopRequested
        optimizer.zero_grad(set_to_none=True)
        total, terms = objective(x)
        if not scale:
            scale.append(lbfgs_loss_scale(float(total.detach())))
        penalised = total + out_of_range_penalty(x)
        (penalised * scale[0]).backward()
        if not evaluated:  # a line search evaluates more points; keep the step's start
            # The total the optimiser minimises (0 penalty for a picture in range), so that keeping
            # and undoing steps judge pictures as the optimiser does.
            evaluated["total"] = penalised.detach()
            evaluated.update({name: value.detach() for name, value in terms.items()})
        return penalised * scale[0]

    def measure(image: Tensor) -> dict[str, float]:
        with torch.no_grad():
            total, terms = objective(image)
            total = total + out_of_range_penalty(image)
        return {"total": float(total)} | {name: float(value) for name, value in terms.items()}

    def undo(back_to: Tensor, was: float, became: float, iteration: int) -> str:
        """Put ``x`` back to an image whose loss is known and restart the curvature history."""
        with torch.no_grad():
            x.copy_(back_to.to(x.device))
        optimizer.state.clear()
        text = (
            f"an L-BFGS step overshot (loss {was:.4g} -> {became:.4g}) at iteration {iteration}; "
            "undid it and restarted the optimiser's history"
        )
        log.info(text)
        return text

    kept = x.detach().cpu().clone()
    kept_losses: dict[str, float] = {}
    just_restarted = False
    done = 0
    earlier = 0  # iterations of this level done before a resume
    if resume is not None:
        with torch.no_grad():
            x.copy_(resume.image.to(x.device))
        if resume.optimiser:
            optimizer.state[x] = placed(resume.optimiser, x.device)
        kept, kept_losses = resume.kept, dict(resume.kept_losses)
        just_restarted, earlier = resume.just_restarted, resume.done
        if resume.loss_scale is not None:
            scale.append(resume.loss_scale)

    def state_now(start: Tensor, history: bool) -> StepperState:
        """What resuming needs, between iterations (``history`` False: the step had not begun)."""
        return StepperState(
            image=start.detach().cpu().clone(),
            kept=kept,
            kept_losses=dict(kept_losses),
            optimiser=cpu_copy(optimizer.state[x]) if history and optimizer.state else {},
            done=earlier + done,
            loss_scale=scale[0] if scale else None,
            just_restarted=just_restarted,
        )

    for step in range(iterations):
        reason = control.end_reason()
        if reason is not None:
            return LevelEnd(kept if done or earlier else x.detach().cpu(), reason, state=state_now(x, True))
        iteration = first_iteration + step
        before = x.detach().clone()
        evaluated.clear()
        first = not optimizer.state  # a new level, or the history was just restarted
        group = optimizer.param_groups[0]
        group["line_search_fn"] = "strong_wolfe" if first else None
        group["max_eval"] = _FIRST_STEP_MAX_EVALUATIONS if first else 1
        # torch's first trial is lr * g / |g|_1 (for |g|_1 > 1): a mean change of exactly that.
        group["lr"] = x.numel() * _FIRST_STEP_MEAN_CHANGE if first else 1.0
        try:
            optimizer.step(closure)
        except StopRequested:
            # A stop inside the line search leaves x at an unmeasured trial point. Without a line
            # search the stop comes from the step's first evaluation, before torch touched its
            # state; with one (``first``) the state before the step was empty.
            with torch.no_grad():
                x.copy_(before)
            state = state_now(before, not first)
            return LevelEnd(kept if done or earlier else x.detach().cpu(), StopReason.STOPPED, state=state)
        # These losses were measured on ``before``, the image the step started from.
        losses = {name: float(value) for name, value in evaluated.items()}
        last = level_ends and step == iterations - 1
        notice = ""
        if kept_losses and not just_restarted and diverged(kept_losses["total"], losses["total"]):
            notice = undo(kept, kept_losses["total"], losses["total"], iteration)
            before, losses = kept.to(x.device), kept_losses
            just_restarted = True
        else:
            just_restarted = False
            problem = non_finite_message(losses, iteration)
            if problem is not None:
                log.warning(problem)
                # ``kept`` still holds the last image whose loss was finite.
                return LevelEnd(kept, StopReason.NUMERICAL_ERROR, problem)
        kept = before.cpu()
        shown = before
        if last and not just_restarted:
            final_losses = measure(x)
            if diverged(losses["total"], final_losses["total"]):
                notice = undo(before, losses["total"], final_losses["total"], iteration)
            else:
                shown, losses = x, final_losses
                kept = x.detach().cpu()
        kept_losses = losses
        done += 1
        yield Step(shown, kept, losses, notice)
    # Completed: the last measured (and shown) image, or paused where the level goes on.
    return LevelEnd(
        kept if done or earlier else x.detach().cpu(), state=None if level_ends else state_now(x, True)
    )
