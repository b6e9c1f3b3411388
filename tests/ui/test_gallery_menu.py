"""Tools > Sample gallery lists the shipped generator and opens its gallery from the main window."""

from app.ui.application import install_tool_docks
from app.ui.gallery import SampleGallery
from app.ui.main_window import MainWindow


def test_gallery_menu_lists_the_shipped_generator_and_opens_it(qtbot):
    window = MainWindow()
    qtbot.addWidget(window)
    assert install_tool_docks(window) == []
    window.fill_gallery_menu()
    entries = [action for action in window.gallery_menu.actions() if action.isEnabled()]
    names = [action.text() for action in entries]
    assert any(name.startswith("mr-t1-axial-dcgan") for name in names), names
    # Image-to-image plugins are not generators from noise: not listed.
    assert not any("denoise" in name for name in names)
    entries[0].trigger()
    assert len(window.galleries) == 1 and isinstance(window.galleries[0], SampleGallery)
    gallery = window.galleries[0]
    qtbot.addWidget(gallery)
    gallery.generate(7, 2)
    gallery.wait_generated()
    assert len(gallery.tiles) == 2
    assert "SYNTHETIC" in gallery.banner.text()
