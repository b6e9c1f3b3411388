"""File > Recent files on a first run (nothing opened yet) and after opening a file."""

from app.io.nifti import save_nifti


def _recent_texts(window) -> list[tuple[str, bool]]:
    window._recent_menu.aboutToShow.emit()  # what opening the submenu does
    return [(action.text(), action.isEnabled()) for action in window._recent_menu.actions()]


def test_recent_files_menu_says_when_it_is_empty_then_lists_opened_files(
    qtbot, main_window, phantom, tmp_path
):
    assert _recent_texts(main_window) == [("No recent files yet", False)]
    path = save_nifti(phantom, tmp_path / "phantom.nii.gz")
    main_window.open_path(path)
    qtbot.waitUntil(lambda: not main_window.is_loading(), timeout=60000)
    assert _recent_texts(main_window) == [(str(path), True)]
