"""Extractive QA (SQuAD format): `question: {q} context: {c}` -> the first gold answer; SQuAD EM / F1."""

from __future__ import annotations

from typing import Any

import datasets

from softprompt_xl.data.tasks import metrics
from softprompt_xl.errors import UserError
from softprompt_xl.data.tasks.base import Task, log

ANSWERS = {"text": datasets.List(datasets.Value("string")), "answer_start": datasets.List(datasets.Value("int32"))}


class QuestionAnswering(Task):
    kind = "extractive_qa"
    primary_metric = "f1"
    required_fields = {"question": str, "context": str, "answers": dict}

    def normalise(self, dataset, source, split, what, where):
        """A source's `answer_columns` ({text, answer_start, question_id}: answers in flat columns) -> SQuAD's
        `answers` {text: [...], answer_start: [...]}, before the task's column aliases."""
        if source.get("answer_columns"):
            dataset = _gather_answers(dataset, source["answer_columns"], split, what)
        return super().normalise(dataset, source, split, what, where)

    def check(self, record):
        problem = super().check(record)
        if problem:
            return problem
        answers = record["answers"]
        if not isinstance(answers.get("text"), list):
            return "field 'answers' should hold a list 'text'"
        return None

    def usable(self, record):
        # Only answerable questions are trained on and scored: SQuAD v2.0's unanswerable ones (no answers) and the
        # blank answers some sets give them (IndicQA, uqa/UQA: "") have no target to learn or score.
        return bool(self._gold(record))

    @staticmethod
    def _gold(record) -> list[tuple[str, int]]:
        """(text, answer_start) of each gold answer that is not blank; answer_start -1 when the set gives none
        (lightblue/KenSwQuAD)."""
        answers = record["answers"]
        starts = list(answers.get("answer_start") or [])
        return [(text, int(starts[i]) if i < len(starts) and starts[i] is not None else -1)
                for i, text in enumerate(answers["text"]) if isinstance(text, str) and text.strip()]

    def encode(self, records, tokenizer, max_input_length, training, what):
        """Contexts too long for the input limit become overlapping windows (`window_overlap` of a window's
        context tokens is shared with the next), each with the whole question; in training only the windows
        that hold the first answer are kept, in evaluation every window is answered and the surest answer wins."""
        if "{context}" not in self.template:
            raise UserError(f"The template of task '{self.name}' has no {{context}} slot: {self.template!r}.")
        before, after = self.template.split("{context}", 1)
        out, long_contexts, windows, unanswerable = [], 0, 0, 0
        # One batched call for all records: only the few long contexts are tokenised again, piece by piece.
        wholes = tokenizer([self.source(r) for r in records])["input_ids"]
        for index, (record, whole) in enumerate(zip(records, wholes)):
            question = record["question"].strip()
            if len(whole) <= max_input_length:
                out.append((index, whole))
                continue
            head = tokenizer(before.format(question=question).rstrip(), add_special_tokens=False)["input_ids"]
            tail = tokenizer(after.format(question=question), add_special_tokens=False)["input_ids"] if after.strip() else []
            context = tokenizer(record["context"], add_special_tokens=False, return_offsets_mapping=True)
            room = max_input_length - len(head) - len(tail) - tokenizer.num_special_tokens_to_add()  # T5's </s>
            if room < 8:
                raise UserError(f"{what}: max_input_length {max_input_length} leaves no room for the context after "
                                f"a question of {len(head)} tokens; raise max_input_length.")
            stride = max(1, room - int(room * float(self.settings.get("window_overlap", 0.25))))
            text, start = self._gold(record)[0]
            if start < 0:  # no answer_start published: its first place in the context (-1: in no window)
                start = record["context"].find(text)
            answer = (start, start + len(text))
            long_contexts += 1
            kept = 0
            for start in range(0, max(1, len(context["input_ids"]) - room + stride), stride):
                span = context["offset_mapping"][start:start + room]
                if training and not (0 <= answer[0] and span[0][0] <= answer[0] and answer[1] <= span[-1][1]):
                    continue
                # With the special tokens the tokenizer adds to a whole input (T5: </s> at the end; Gemma: <bos>)
                out.append((index, tokenizer.build_inputs_with_special_tokens(
                    head + context["input_ids"][start:start + room] + tail)))
                kept += 1
            windows += kept
            unanswerable += not kept
        if long_contexts:
            log.info("%s: %d of %d contexts longer than %d tokens became %d windows%s", what, long_contexts,
                     len(records), max_input_length, windows,
                     f"; {unanswerable} of them had no window holding the whole answer and are left out" if unanswerable else "")
        return out

    def source(self, record):
        return self.template.format(question=record["question"].strip(), context=record["context"].strip())

    def target(self, record):
        return self._gold(record)[0][0]

    def reference(self, record):
        # The context too: a generation that is not a span of it is counted as unparsed.
        return {"answers": [text for text, _ in self._gold(record)], "context": record["context"]}

    def score(self, predictions, references, lang):
        scores = metrics.squad(predictions, [r["answers"] for r in references], lang)
        outside = self._outside(predictions, references, lang)
        scores["unparsed"] = 100.0 * sum(outside) / len(outside) if outside else 0.0
        return scores

    def example_stats(self, predictions, references, lang):
        return metrics.with_rate(metrics.squad_stats(predictions, [r["answers"] for r in references], lang), "unparsed",
                                 self._outside(predictions, references, lang))

    @staticmethod
    def _outside(predictions, references, lang) -> list[bool]:
        """Per example: the answer is empty or not a span of the context."""
        return [not (p := metrics.normalize_answer(prediction, lang)) or p not in metrics.normalize_answer(r["context"], lang)
                for prediction, r in zip(predictions, references)]


def _gather_answers(dataset: datasets.Dataset, spec: Any, split: str, what: str) -> datasets.Dataset:
    """Rows sharing a `question_id` are one question (uqa/UQA lists a question once per gold answer), kept where it
    is first seen; without it each row is one. An `is_impossible` row adds no answer; an answer without
    `answer_start` gets -1 (found in the context where needed)."""
    example = "answer_columns: {text: answer, answer_start: answer_start, question_id: id}"
    if not isinstance(spec, dict) or not spec.get("text") or set(spec) - {"text", "answer_start", "question_id"}:
        raise UserError(f"The answer_columns of {what} should name the answer's text column (and optionally its "
                        f"answer_start column), e.g. '{example}'; got {spec!r}.")
    absent = [c for c in spec.values() if c not in dataset.column_names]
    if absent:
        raise UserError(f"The {split} split of {what} has no column {', '.join(repr(a) for a in absent)} for "
                        f"answer_columns (its columns: {', '.join(dataset.column_names)}). Fix the source's "
                        "answer_columns (or its 'columns' renames, applied first).")
    columns = dataset.column_names
    texts = dataset[spec["text"]]
    starts = dataset[spec["answer_start"]] if spec.get("answer_start") else [-1] * len(texts)
    impossible = dataset["is_impossible"] if "is_impossible" in columns else [False] * len(texts)
    ids = dataset[spec["question_id"]] if spec.get("question_id") else range(len(texts))
    question: dict[Any, int] = {}  # question id -> its place among the questions
    rows: list[int] = []  # the row each question is first seen at
    answers: list[dict] = []
    for row, (qid, text, start, none) in enumerate(zip(ids, texts, starts, impossible)):
        if qid not in question:
            question[qid] = len(rows)
            rows.append(row)
            answers.append({"text": [], "answer_start": []})
        if none or text is None:
            continue
        answers[question[qid]]["text"].append(str(text))
        answers[question[qid]]["answer_start"].append(-1 if start is None else int(start))
    kept = dataset.select(rows).remove_columns([spec[k] for k in ("text", "answer_start") if spec.get(k)])
    if "answers" in kept.column_names:
        kept = kept.remove_columns("answers")
    if len(kept) < len(dataset):
        log.info("%s %s: %s answer rows are %s questions (rows with the same %s)", what, split, f"{len(dataset):,}",
                 f"{len(kept):,}", spec["question_id"])
    return kept.add_column("answers", answers, feature=ANSWERS)
