"""The annotations of one reading: shapes in world coordinates plus an optional label mask.

The document is the model the UI observes (``changed`` event); every edit goes through
``app.annotations.commands`` so it can be undone.
"""

from __future__ import annotations

from app.annotations.label_mask import LabelMask
from app.annotations.shapes import Annotation
from app.core.events import Event


class AnnotationDocument:
    """Ordered annotations by id, an optional label mask, and what they were drawn on."""

    def __init__(self, reference: dict | None = None) -> None:
        self._annotations: dict[str, Annotation] = {}
        self.mask: LabelMask | None = None
        # Free-form description of the reference volume (name, frame of reference UID, ...).
        self.reference: dict = dict(reference or {})
        self.changed = Event()  # emitted with no arguments after any change

    def __len__(self) -> int:
        return len(self._annotations)

    def __iter__(self):
        return iter(list(self._annotations.values()))

    def get(self, annotation_id: str) -> Annotation:
        try:
            return self._annotations[annotation_id]
        except KeyError:
            raise KeyError(f"no annotation with id {annotation_id!r}") from None

    def ids(self) -> list[str]:
        return list(self._annotations)

    # Low-level edits, used by commands (which make them undoable) and by the loader.
    def insert(self, annotation: Annotation, position: int | None = None) -> None:
        if annotation.annotation_id in self._annotations:
            raise ValueError(f"annotation id {annotation.annotation_id!r} already present")
        items = list(self._annotations.items())
        position = len(items) if position is None else position
        items.insert(position, (annotation.annotation_id, annotation))
        self._annotations = dict(items)
        self.changed.emit()

    def pop(self, annotation_id: str) -> tuple[Annotation, int]:
        position = self.ids().index(annotation_id)
        annotation = self._annotations.pop(annotation_id)
        self.changed.emit()
        return annotation, position

    def put(self, annotation: Annotation) -> Annotation:
        """Replace the annotation with the same id; return the previous one."""
        previous = self.get(annotation.annotation_id)
        self._annotations[annotation.annotation_id] = annotation
        self.changed.emit()
        return previous
