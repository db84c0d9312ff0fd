"""The console's light and dark palettes (resources/palettes), applied to the
whole application and to the charts; "system" follows the desktop's
colour scheme, also when it changes while the console runs."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QGuiApplication, QPalette

import resources

CHOICES = [("system", "Follow the system"), ("light", "Light"), ("dark", "Dark")]


def scheme_for(choice: str) -> str:
    """"light" or "dark" for a choice of CHOICES."""
    if choice in resources.SCHEMES:
        return choice
    dark = QGuiApplication.styleHints().colorScheme() == Qt.ColorScheme.Dark
    return "dark" if dark else "light"


def palette(scheme: str) -> QPalette:
    result = QPalette()
    for role, colour in resources.palette(scheme).items():
        result.setColor(getattr(QPalette.ColorRole, role), QColor(colour))
    for role, colour in resources.disabled_palette(scheme).items():
        result.setColor(QPalette.ColorGroup.Disabled, getattr(QPalette.ColorRole, role),
                        QColor(colour))
    return result


def apply(choice: str) -> str:
    """Apply a choice to the application; returns the scheme applied."""
    hints = QGuiApplication.styleHints()
    if hasattr(hints, "setColorScheme"):  # Qt 6.8: tell the style, too
        hints.setColorScheme({"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}
                             .get(choice, Qt.ColorScheme.Unknown))
    scheme = scheme_for(choice)
    QGuiApplication.setPalette(palette(scheme))
    return scheme
