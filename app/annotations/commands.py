"""Undo/redo: every edit of an AnnotationDocument is a command on a CommandStack.

A command knows how to do and undo itself; the stack keeps the done ones for undo and the
undone ones for redo (cleared by any new edit), as in Qt's QUndoStack but without Qt.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from app.annotations.document import AnnotationDocument
from app.annotations.label_mask import LabelMask
from app.annotations.shapes import Annotation
from app.core.events import Event


class Command:
    text = ""

    def do(self) -> None:
        raise NotImplementedError

    def undo(self) -> None:
        raise NotImplementedError


@dataclass
class AddAnnotation(Command):
    document: AnnotationDocument
    annotation: Annotation
    position: int | None = None

    @property
    def text(self) -> str:
        return f"add {self.annotation.kind}"

    def do(self) -> None:
        self.document.insert(self.annotation, self.position)

    def undo(self) -> None:
        _, self.position = self.document.pop(self.annotation.annotation_id)


@dataclass
class RemoveAnnotation(Command):
    document: AnnotationDocument
    annotation_id: str
    _removed: tuple[Annotation, int] | None = None

    text = "remove annotation"

    def do(self) -> None:
        self._removed = self.document.pop(self.annotation_id)

    def undo(self) -> None:
        annotation, position = self._removed
        self.document.insert(annotation, position)


@dataclass
class ReplaceAnnotation(Command):
    """Move, resize or relabel: the new annotation has the same id as the old one."""

    document: AnnotationDocument
    new: Annotation
    _old: Annotation | None = None

    text = "edit annotation"

    def do(self) -> None:
        self._old = self.document.put(self.new)

    def undo(self) -> None:
        self.document.put(self._old)


@dataclass
class PaintMask(Command):
    """One brush or eraser stroke: writes ``value`` at the voxels it covers, remembers the old
    values. A stroke grows while the mouse moves (``extend``) and undoes as one step."""

    document: AnnotationDocument
    mask: LabelMask
    indices_kji: np.ndarray
    value: int
    _chunks: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list, repr=False)
    _previous_mask: LabelMask | None = None

    @property
    def text(self) -> str:
        return "erase" if self.value == 0 else "paint"

    def do(self) -> None:
        self._previous_mask = self.document.mask
        self.document.mask = self.mask
        pending = [self.indices_kji] + [indices for indices, _ in self._chunks[1:]]
        self._chunks = []
        for indices in pending:
            self._apply(indices)
        self.document.changed.emit()

    def extend(self, indices_kji: np.ndarray) -> None:
        """Paint more of the same stroke (already done: the stack need not be involved)."""
        self._apply(indices_kji)
        self.document.changed.emit()

    def _apply(self, indices_kji: np.ndarray) -> None:
        self._chunks.append((indices_kji, self.mask.read(indices_kji)))
        self.mask.write(indices_kji, self.value)

    def undo(self) -> None:
        for indices, previous in reversed(self._chunks):
            self.mask.write(indices, previous)
        self.document.mask = self._previous_mask
        self.document.changed.emit()


class CommandStack:
    """Done commands (undo) and undone ones (redo); ``changed`` fires after every step."""

    def __init__(self, limit: int = 500) -> None:
        self._done: list[Command] = []
        self._undone: list[Command] = []
        self.limit = limit
        self.changed = Event()

    def push(self, command: Command) -> None:
        """Do ``command`` and record it (a failing command is not recorded)."""
        command.do()
        self._done.append(command)
        del self._done[: max(0, len(self._done) - self.limit)]
        self._undone.clear()
        self.changed.emit()

    def undo(self) -> bool:
        if not self._done:
            return False
        command = self._done.pop()
        command.undo()
        self._undone.append(command)
        self.changed.emit()
        return True

    def redo(self) -> bool:
        if not self._undone:
            return False
        command = self._undone.pop()
        command.do()
        self._done.append(command)
        self.changed.emit()
        return True

    def can_undo(self) -> bool:
        return bool(self._done)

    def can_redo(self) -> bool:
        return bool(self._undone)

    def undo_text(self) -> str:
        return self._done[-1].text if self._done else ""

    def redo_text(self) -> str:
        return self._undone[-1].text if self._undone else ""

    def clear(self) -> None:
        self._done.clear()
        self._undone.clear()
        self.changed.emit()
