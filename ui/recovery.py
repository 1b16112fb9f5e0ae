"""Crash recovery: offering, at start, the picture and settings an unclean exit left in the autosave."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtGui import QImage

from engine.errors import InputError
from engine.imageio import load_image
from engine.params import StyleJob
from engine.recipe import job_from_recipe
from engine.records import Finished, Progress
from engine.results import snapshot
from ui.autosave import AutosaveStore, PendingAutosave
from ui.message_bar import Level
from ui.model import RunModel
from ui.prompts import Prompter
from ui.qtutil import rgb_to_qimage

log = logging.getLogger(__name__)

# apply_job(job, source, recipe): put a job's settings and inputs back in the window.
ApplyJob = Callable[[StyleJob, str, dict[str, Any]], None]


def recovered(job: StyleJob, pending: PendingAutosave, image: Any) -> Finished:
    """The autosaved picture as the Finished record of a stopped run, so its recipe is built as usual."""
    progress = Progress(iteration=pending.iteration, total=pending.iteration, elapsed=0.0, losses={})
    return snapshot(job, progress, image, message="recovered")


class Recovery:
    """Offers what the autosave holds once; the autosave is cleared whatever the answer."""

    def __init__(
        self,
        autosave: AutosaveStore,
        prompter: Prompter,
        model: RunModel,
        apply_job: ApplyJob,
        show_picture: Callable[[QImage], None],
        say: Callable[[str, Level], None],
    ) -> None:
        self.autosave = autosave
        self.prompter = prompter
        self.model = model
        self.apply_job = apply_job
        self.show_picture = show_picture
        self.say = say

    def check(self) -> bool:
        """Offer what an unclean exit left in the autosave; True when something was restored."""
        pending = self.autosave.pending()
        if pending is None:
            return False
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(pending.saved_at))
        iteration = f" at iteration {pending.iteration}" if pending.iteration else ""
        restore = self.prompter.ask(
            "Restore unfinished work?",
            "Painterly did not close properly last time. The picture of the run that was in progress "
            f"(saved {when}{iteration}) and its settings can be restored.",
            "Restore",
            "Discard",
        )
        try:
            if not restore:
                return False
            loaded = load_image(pending.image_path)
            image = rgb_to_qimage(loaded.rgb)
            job: StyleJob | None = None
            if pending.recipe:
                try:
                    job = job_from_recipe(pending.recipe, source=pending.image_path)
                except InputError as error:
                    log.warning("autosave recipe unusable: %s", error)
            if job is not None:
                self.apply_job(job, "the unfinished run", pending.recipe)
                finished = recovered(job, pending, loaded.rgb)
                self.model.view(self.model.add_to_history(finished, image, label="recovered"))
            else:
                self.show_picture(image)
            self.say(
                "Restored the unfinished run's picture"
                + (" and settings" if job else "")
                + ". Export it to keep it.",
                Level.INFO,
            )
            return True
        except (InputError, OSError) as error:
            self.say(f"The unfinished run could not be restored: {error}", Level.ERROR)
            return False
        finally:
            self.autosave.clear()
