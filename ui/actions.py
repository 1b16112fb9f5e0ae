"""The window's commands: one QAction each (text, tooltip, shortcuts, icon), and the menus and toolbar."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QSizePolicy, QToolBar, QWidget

from ui.qtutil import icon

if TYPE_CHECKING:
    from ui.main_window import MainWindow

Shortcuts = list[QKeySequence | str] | QKeySequence.StandardKey | None


def make_action(
    parent: QWidget,
    text: str,
    tip: str,
    slot: Callable[[], Any],
    shortcuts: Shortcuts = None,
    icon_name: str | None = None,
) -> QAction:
    """An action of ``parent`` whose tooltip names its shortcuts; it works wherever focus is in the window."""
    action = QAction(text, parent)
    if icon_name:
        action.setIcon(icon(icon_name))
    if isinstance(shortcuts, QKeySequence.StandardKey):
        action.setShortcut(shortcuts)
    elif shortcuts:
        action.setShortcuts([QKeySequence(s) if isinstance(s, str) else s for s in shortcuts])
    keys = ", ".join(s.toString(QKeySequence.SequenceFormat.NativeText) for s in action.shortcuts())
    action.setToolTip(f"{tip} ({keys})" if keys else tip)
    action.setStatusTip(tip)
    action.triggered.connect(lambda checked=False: slot())
    action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
    parent.addAction(action)
    return action


@dataclass(frozen=True)
class Actions:
    open: QAction
    add_style: QAction
    paste: QAction
    paste_style: QAction
    open_recipe: QAction
    save_preview: QAction
    export: QAction
    quit: QAction
    run: QAction
    stop: QAction
    continue_from: QAction
    fit: QAction
    actual_pixels: QAction
    zoom_in: QAction
    zoom_out: QAction
    new_seed: QAction
    about: QAction


def build_actions(window: MainWindow) -> Actions:
    """The window's actions, in its menu bar and toolbar."""
    view = window.result.view
    a = make_action
    w = window
    actions = Actions(
        open=a(
            w,
            "Open photo…",
            "Choose the photo to paint",
            w.open_content,
            QKeySequence.StandardKey.Open,
            "open",
        ),
        add_style=a(
            w, "Add style…", "Add paintings whose style to use", w.add_styles, ["Ctrl+Shift+O"], "add"
        ),
        paste=a(
            w,
            "Paste photo",
            "Use the clipboard's image as the photo",
            w.content_pane.paste,
            QKeySequence.StandardKey.Paste,
            "paste",
        ),
        paste_style=a(
            w,
            "Paste style",
            "Add the clipboard's image as a style",
            w.style_list.paste,
            ["Ctrl+Shift+V"],
            "paste",
        ),
        open_recipe=a(
            w,
            "Open recipe from image…",
            "Restore every setting and the inputs from an image Painterly saved",
            w.recipes.open_recipe,
            ["Ctrl+Shift+R"],
            "recipe",
        ),
        save_preview=a(
            w,
            "Save preview…",
            "Save the picture shown now, with its recipe",
            w.save_preview,
            QKeySequence.StandardKey.Save,
            "save",
        ),
        export=a(
            w,
            "Export…",
            "Export the result as PNG, JPEG, WebP or TIFF with its recipe",
            w.export_result,
            ["Ctrl+E"],
            "export",
        ),
        quit=a(w, "Quit", "Close Painterly", w.close, QKeySequence.StandardKey.Quit),
        run=a(w, "Run", "Start painting", w.start_run, ["Ctrl+R", "Ctrl+Return", "Ctrl+Enter"], "run"),
        stop=a(w, "Stop", "Stop and keep the picture so far", w.stop_run, ["Esc"], "stop"),
        continue_from=a(
            w,
            "Continue from this",
            "Set up a run that goes on from the picture on view: its settings, 50 more iterations in one "
            "level; raise Long edge first to upscale and refine",
            w.continue_from_view,
            ["Ctrl+Alt+R"],
            "run",
        ),
        fit=a(w, "Fit", "Fit the picture in the view", view.fit, ["Ctrl+0"], "zoom-fit"),
        actual_pixels=a(
            w,
            "Actual pixels",
            "One picture pixel per screen pixel",
            view.actual_pixels,
            ["Ctrl+1"],
            "zoom-100",
        ),
        zoom_in=a(
            w, "Zoom in", "Magnify the picture", lambda: view.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn
        ),
        zoom_out=a(
            w, "Zoom out", "Shrink the picture", lambda: view.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut
        ),
        new_seed=a(
            w,
            "New seed",
            "Pick a random seed for another variation",
            lambda: _new_seed(w),
            ["Ctrl+Shift+N"],
            "dice",
        ),
        about=a(w, "About Painterly", "Versions, device and network weights", w.show_about, ["F1"], "about"),
    )
    _build_menus(window, actions)
    _build_toolbar(window, actions)
    _build_view_menu(window, actions)
    return actions


def _new_seed(window: MainWindow) -> None:
    field = window.params_panel.fields.get("seed")
    if field is not None and hasattr(field, "new_seed"):
        field.new_seed()


def _build_menus(window: MainWindow, actions: Actions) -> None:
    menu = window.menuBar()
    file_menu = menu.addMenu("&File")
    for action in (actions.open, actions.add_style, actions.paste, actions.paste_style):
        file_menu.addAction(action)
    file_menu.addSeparator()
    file_menu.addAction(actions.open_recipe)
    file_menu.addSeparator()
    file_menu.addAction(actions.save_preview)
    file_menu.addAction(actions.export)
    file_menu.addSeparator()
    file_menu.addAction(actions.quit)
    run_menu = menu.addMenu("&Run")
    run_menu.addAction(actions.run)
    run_menu.addAction(actions.stop)
    run_menu.addSeparator()
    run_menu.addAction(actions.continue_from)
    run_menu.addSeparator()
    run_menu.addAction(actions.new_seed)
    view_menu = menu.addMenu("&View")
    for action in (actions.fit, actions.actual_pixels, actions.zoom_in, actions.zoom_out):
        view_menu.addAction(action)
    view_menu.addSeparator()
    compare = view_menu.addAction("Hold Space or C to compare with the photo")
    compare.setEnabled(False)
    help_menu = menu.addMenu("&Help")
    help_menu.addAction(actions.about)


def _build_view_menu(window: MainWindow, actions: Actions) -> None:
    """Right-click on the picture: go on from it, or save it."""
    view = window.result.view
    view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
    view.addActions([actions.continue_from, actions.save_preview, actions.export])


def _build_toolbar(window: MainWindow, actions: Actions) -> None:
    toolbar = QToolBar("Main")
    toolbar.setObjectName("MainToolbar")
    toolbar.setMovable(False)
    toolbar.setIconSize(QSize(18, 18))
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for action in (actions.open, actions.add_style):
        toolbar.addAction(action)
    toolbar.addSeparator()
    toolbar.addAction(actions.open_recipe)
    toolbar.addSeparator()
    toolbar.addAction(actions.save_preview)
    toolbar.addAction(actions.export)
    spacer = QWidget()
    spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
    toolbar.addWidget(spacer)
    toolbar.addAction(actions.about)
    window.addToolBar(toolbar)
