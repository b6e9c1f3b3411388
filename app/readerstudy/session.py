"""A reader's session: the per-reader order, where to resume, and recording answers durably.

Qt-free: the reading window (``app.ui.reading``) and the durability test drive the same object.
The order is practice items first (in a fixed order), then the other items shuffled with a seed
derived from the study seed and the reader id, so it is reproducible from the recorded seed and
differs between readers. For a 2AFC pair the left/right placement is drawn from the same seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.readerstudy.definition import Question
from app.readerstudy.storage import StoreError, StudyStore


class AnswerError(ValueError):
    """Answers that cannot be recorded (missing, out of range, changes not allowed)."""


def reader_seed(study_seed: int, reader_id: str) -> int:
    """The seed of one reader's order: a hash of the study seed and the reader id."""
    digest = hashlib.sha256(f"{study_seed}:{reader_id}".encode()).hexdigest()
    return int(digest[:15], 16)


def reading_order(items: list[dict], study_seed: int, reader_id: str, shuffle: bool = True) -> list[dict]:
    """Practice items first, then the rest in the reader's random order; pairs get random sides."""
    rng = np.random.default_rng(reader_seed(study_seed, reader_id))
    practice = [item for item in items if item.get("practice")]
    main = [item for item in items if not item.get("practice")]
    if shuffle:
        main = [main[i] for i in rng.permutation(len(main))]
    order = []
    for item in practice + main:
        image_ids = list(item["image_ids"])
        if len(image_ids) == 2 and rng.random() < 0.5:
            image_ids.reverse()
        order.append(
            {"item_id": item["item_id"], "image_ids": image_ids, "practice": bool(item.get("practice"))}
        )
    return order


@dataclass(frozen=True)
class SessionItem:
    item_id: str
    image_ids: list[str]
    practice: bool


def _validate(question: Question, value: object, image_ids: list[str]) -> None:
    if question.type in ("real_synthetic", "two_afc"):
        if not isinstance(value, dict):
            raise AnswerError(f"{question.id}: expected a choice with a confidence")
        choices = ("real", "synthetic") if question.type == "real_synthetic" else tuple(image_ids)
        if value.get("choice") not in choices:
            raise AnswerError(f"{question.id}: choose one of the options")
        low, high = (1, 5) if question.scale == "1-5" else (0, 100)
        confidence = value.get("confidence")
        if not isinstance(confidence, int | float) or not low <= confidence <= high:
            raise AnswerError(f"{question.id}: confidence must be between {low} and {high}")
    elif question.type == "likert":
        if not isinstance(value, int) or not 1 <= value <= 5:
            raise AnswerError(f"{question.id}: choose a score from 1 to 5")
    elif question.type == "free_text":
        if not isinstance(value, str):
            raise AnswerError(f"{question.id}: expected text")
    elif question.type == "localise":
        if not (isinstance(value, dict) and len(value.get("lps_mm", [])) == 3 and "image_id" in value):
            raise AnswerError(f"{question.id}: expected a clicked location")


class ReadingSession:
    """One reader working through one study's reading package, backed by a StudyStore."""

    def __init__(
        self, package: dict, package_dir: str | Path, store: StudyStore, reader_id: str, claim: bool = True
    ) -> None:
        """``claim``: make this the reader's live session (an older one elsewhere stops recording);
        False for a look that records nothing (a screenshot)."""
        reader_id = reader_id.strip()
        if not reader_id:
            raise ValueError("a reader id is needed")
        self.package = package
        self.package_dir = Path(package_dir)
        self.store = store
        self.reader_id = reader_id
        self.study_id = package["study_id"]
        self.options = package.get("options", {})
        self.questions = [Question(**q) for q in package["questions"]]
        order = reading_order(
            package["items"], int(package["seed"]), reader_id, self.options.get("shuffle", True)
        )
        recorded = store.start_session(
            self.study_id, reader_id, str(reader_seed(int(package["seed"]), reader_id)), order
        )
        self.items = [SessionItem(o["item_id"], list(o["image_ids"]), bool(o["practice"])) for o in recorded]
        # This opening is the reader's live session; one open elsewhere stops recording.
        self.claim_id = store.claim_session(self.study_id, reader_id) if claim else None
        self._answers = store.latest_answers(self.study_id, reader_id)
        self.position = self.first_unanswered()

    # ----- where we are ------------------------------------------------------------------------
    def first_unanswered(self) -> int:
        """Index of the first item without recorded answers; len(items) when all are done."""
        for index, item in enumerate(self.items):
            if not self.is_answered(item.item_id):
                return index
        return len(self.items)

    def is_answered(self, item_id: str) -> bool:
        stored = self._answers.get(item_id, {})
        return all(q.id in stored for q in self.questions_for(item_id) if q.required)

    @property
    def finished(self) -> bool:
        return self.position >= len(self.items)

    @property
    def current(self) -> SessionItem | None:
        return None if self.finished else self.items[self.position]

    def progress(self) -> tuple[str, int, int]:
        """("practice" or "case", number of the current one (1-based), how many of that kind)."""
        practice = [i for i in self.items if i.practice]
        if self.current is not None and self.current.practice:
            return "practice", self.position + 1, len(practice)
        main_total = len(self.items) - len(practice)
        return "case", min(self.position - len(practice) + 1, main_total), main_total

    def questions_for(self, item_id: str) -> list[Question]:
        """A pair is asked the two_afc question(s); a single image every other question."""
        item = next(i for i in self.items if i.item_id == item_id)
        paired = len(item.image_ids) == 2
        return [q for q in self.questions if (q.type == "two_afc") == paired]

    def practice_feedback(self, item_id: str) -> str | None:
        """What a practice case was, in the words readers see, when the study gives feedback
        (``practice_feedback``) and the item is a practice case; None otherwise."""
        if not self.options.get("practice_feedback"):
            return None
        entry = next((i for i in self.package["items"] if i["item_id"] == item_id), None)
        if entry is None or not entry.get("practice") or "practice_answer" not in entry:
            return None
        answer = entry["practice_answer"]
        item = next(i for i in self.items if i.item_id == item_id)
        if len(item.image_ids) == 2:
            side = "A" if item.image_ids[0] == answer else "B"
            return f"In the practice pair you just answered, image {side} was the computer-generated one."
        return (
            "The practice case you just answered was computer-generated."
            if answer == "synthetic"
            else "The practice case you just answered was real (acquired)."
        )

    def stored_answers(self, item_id: str) -> dict[str, object]:
        return dict(self._answers.get(item_id, {}))

    def image_path(self, image_id: str) -> Path:
        return self.package_dir / "images" / f"{image_id}{self.package.get('image_suffix', '.nii.gz')}"

    # ----- recording ---------------------------------------------------------------------------
    def submit(self, values: dict[str, object], seconds: float) -> None:
        """Validate and durably record the current item's answers, then move to the next unanswered."""
        item = self.current
        if item is None:
            raise AnswerError("the session is finished")
        questions = self.questions_for(item.item_id)
        known = {q.id for q in questions}
        unknown = set(values) - known
        if unknown:
            raise AnswerError(f"unknown question(s): {', '.join(sorted(unknown))}")
        for question in questions:
            if question.id not in values:
                if question.required:
                    raise AnswerError(f"please answer: {question.default_text()}")
                continue
            _validate(question, values[question.id], item.image_ids)
        already = self._answers.get(item.item_id, {})
        if already and not self.options.get("allow_answer_modification", False):
            changed = [k for k, v in values.items() if k in already and already[k] != v]
            if changed:
                raise AnswerError("answers to this case cannot be changed in this study")
        try:
            self.store.record_answers(
                self.study_id, self.reader_id, item.item_id, values, seconds, self.claim_id
            )
        except StoreError as error:
            raise AnswerError(str(error)) from None
        self._answers.setdefault(item.item_id, {}).update(values)
        # Answered items always form a prefix of the order, so the next item is either a
        # revisited one (after going back) or the first unanswered one.
        self.position = min(self.items.index(item) + 1, len(self.items))

    def leave(self, seconds: float, action: str = "pause") -> None:
        """Record time spent on the current item without answering (pause, close, navigation)."""
        if self.current is not None:
            try:
                self.store.record_time(
                    self.study_id, self.reader_id, self.current.item_id, seconds, action, self.claim_id
                )
            except StoreError as error:
                raise AnswerError(str(error)) from None

    def go_to(self, index: int, seconds_on_current: float = 0.0) -> None:
        """Move to another item (only when the study allows navigation; never past the first
        unanswered one). Time on the item being left is recorded and summed on revisits."""
        if not self.options.get("allow_case_navigation", False):
            raise AnswerError("this study does not allow going back to other cases")
        if not 0 <= index <= self.first_unanswered() or index >= len(self.items):
            raise AnswerError("that case is not available yet")
        self.leave(seconds_on_current, "navigate")
        self.position = index

    def time_spent(self) -> dict[str, float]:
        return self.store.time_spent(self.study_id, self.reader_id)
