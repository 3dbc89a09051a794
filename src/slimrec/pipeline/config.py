"""``RunConfig``: the whole SLIM pipeline of ``slimrec run`` in one typed YAML file.

Each section configures one stage and is, together with the hashes of the stages it
reads from, that stage's cache key (see :mod:`slimrec.pipeline.stage`): change a value
and only the stages downstream of it run again. Settings that cannot change a result
(threads, devices, concurrency, timeouts) are left out of the keys.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, FilePath, field_validator, model_validator

from slimrec.cluster import RayConfig
from slimrec.config import LaterSettingsOmitted, field_values
from slimrec.data import PrepareConfig
from slimrec.data.loaders import DataSource
from slimrec.errors import SlimrecError
from slimrec.eval.order import Perturbation
from slimrec.eval.results import DEFAULT_TABLE_METRICS
from slimrec.llm.backends import EndpointConfig, SamplingConfig
from slimrec.machine import THREADS
from slimrec.methods import METHODS, Method, Needs, get_method
from slimrec.methods.slim.student import StudentConfig
from slimrec.methods.slim.student.reason import (
    ENGINE,
    STRUCTURED,
    Engine,
    one_place_to_run,
    one_turn_on_ray,
)
from slimrec.methods.slim.teach import TeacherConfig
from slimrec.text import DEFAULT_ENCODER
from slimrec.training import TrainConfig
from slimrec.training.config import monitor_cutoff

Backbone = Literal["sasrec", "gru4rec", "srgnn", "caser"]
Protocol = Literal["full", "sampled"]


class DataSection(BaseModel):
    """Which dataset, and how it is filtered and split."""

    model_config = ConfigDict(extra="forbid")

    source: DataSource = Field(default_factory=DataSource, description="Where the raw data is.")
    prepare: PrepareConfig = Field(
        default_factory=PrepareConfig, description="k-core, subsampling and length options."
    )


class TeacherSection(TeacherConfig):
    """The teacher LLM (every ``TeacherConfig`` field) and which users it writes for."""

    model_config = ConfigDict(extra="forbid")

    n_users: int = Field(200, ge=1, description="How many users (seeded subset) it writes for.")
    seed: int = Field(0, description="Seed of the user subset.")
    answer_cache: Literal["shared", "run"] = Field(
        "shared",
        description="Where answers are cached: shared ($SLIMREC_CACHE/llm-answers.sqlite, "
        "reused across runs) or run (llm-answers.sqlite in the run folder).",
    )

    def teacher_config(self) -> TeacherConfig:
        return TeacherConfig(**field_values(self, exclude={"n_users", "seed", "answer_cache"}))


class ReasonSection(LaterSettingsOmitted):
    """How the distilled student writes rationales for every user (``ReasonConfig``).

    Its base model, adapter and prompt come from the student and teacher sections: the
    student must be asked exactly as it was trained.
    """

    model_config = ConfigDict(extra="forbid")
    LATER_OFF: ClassVar[dict[str, Any]] = {"structured": False, "rationales_file": None}

    sampling: SamplingConfig = Field(
        default_factory=lambda: SamplingConfig(max_new_tokens=192, temperature=0.0),
        description="Decoding settings (default greedy, at most 192 new tokens).",
    )
    structured: bool = Field(False, description=STRUCTURED)
    batch_size: int = Field(64, ge=1, description="Rows decoded together in one forward pass.")
    refill: bool = Field(
        True, description="Refill freed batch rows with waiting prompts (continuous batching)."
    )
    share_prefix: bool = Field(
        True,
        description="Run the prompts' common opening (template, instructions) once for all rows.",
    )
    threads: int | None = Field(None, ge=1, description=THREADS)
    dtype: str = Field(
        "auto",
        pattern=r"^(auto|float32|bfloat16|float16)$",
        description="Weights dtype: auto = float32 on CPU, bfloat16 on GPUs that support it.",
    )
    device: str = Field("auto", description="auto | cpu | cuda | cuda:N")
    shard_size: int = Field(256, ge=1, description="Users per resumable shard.")
    engine: Engine = Field("hf", description=ENGINE)
    endpoint: EndpointConfig | None = Field(
        None,
        description="Ask the distilled student at an OpenAI-compatible endpoint that serves "
        "it (vLLM --enable-lora, slimrec serve-llm --adapter); also used by slimrec serve.",
    )
    ray: RayConfig | None = Field(
        None,
        description="Write the rationales across a Ray cluster, one student replica per "
        "actor (pip install 'slimrec[ray]'); the same answers and files as without it.",
    )
    rationales_file: FilePath | None = Field(
        None,
        description="Rationales written elsewhere (another run's stages/reason-*/"
        "rationales.parquet, or any Parquet with columns prompt and response): each user "
        "whose prompt here is identical to one of them gets that answer, the others none; "
        "no teacher, distillation or reasoning stage runs for them.",
    )

    @model_validator(mode="after")
    def _one_place_to_run(self) -> ReasonSection:
        one_place_to_run(self.engine, self.endpoint, self.ray, self.structured)
        return self


class EvalSection(BaseModel):
    """Test protocols of every fitted model."""

    model_config = ConfigDict(extra="forbid")

    protocols: tuple[Protocol, ...] = Field(
        ("full", "sampled"),
        min_length=1,
        description="full: rank the whole catalog; sampled: the target among 100 uniformly "
        "drawn items the user has not interacted with (the SLIM paper's protocol).",
    )
    ks: tuple[int, ...] = Field((10, 20), description="Cut-offs K of NDCG@K and Hit@K.")
    negatives: int = Field(
        100,
        ge=1,
        description="Negatives per target of the sampled protocol (SLIM's paper: 100; "
        "LLM-SRec's: 99); the report's headers say which.",
    )


class DiagnoseSection(BaseModel):
    """Diagnostics run on every fitted model after training (see ``slimrec diagnose``)."""

    model_config = ConfigDict(extra="forbid")

    order: list[Perturbation] = Field(
        default_factory=list,
        description="Order-sensitivity tests to run (shuffle, reverse, shuffle-keep-last): "
        "each fit scored on perturbed test histories; a report section each.",
    )
    repeats: int = Field(3, ge=1, description="Permutations per user, averaged.")


class ReportSection(BaseModel):
    """What report.md shows."""

    model_config = ConfigDict(extra="forbid")

    metrics: tuple[str, ...] = Field(
        DEFAULT_TABLE_METRICS, min_length=1, description="Metrics of the tables."
    )
    digits: int = Field(4, ge=1, le=8, description="Decimals of the table cells.")
    plot: bool = Field(True, description="Draw the long-tail plot (popularity.png).")
    popularity_groups: int = Field(
        5, ge=2, le=20, description="Item popularity groups of the plot, head to tail."
    )
    top_k: int = Field(10, ge=1, description="Recommendations per user counted in the plot.")
    history_groups: int = Field(
        4, ge=0, le=20, description="Groups of test users by history length; 0: no such table."
    )


class RunConfig(BaseModel):
    """Everything ``slimrec run`` does: prepare, teach, distill, reason, embed, fit, report."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("slim", description="A label for the report.")
    data: DataSection = Field(default_factory=DataSection, description="The dataset.")
    teacher: TeacherSection = Field(
        default_factory=TeacherSection, description="The teacher LLM and its users."
    )
    student: StudentConfig = Field(
        default_factory=StudentConfig, description="LoRA distillation of the student."
    )
    reason: ReasonSection = Field(
        default_factory=ReasonSection, description="Student rationales for every user."
    )
    encoder: str = Field(
        DEFAULT_ENCODER, description="Sentence encoder of item texts and rationales."
    )
    encoder_device: str = Field(
        "auto",
        pattern=r"^(auto|cpu|cuda(:\d+)?)$",
        description="Where the encoder runs: auto (CUDA if any) | cpu | cuda | cuda:N.",
    )
    encoder_ray: RayConfig | None = Field(
        None,
        description="Embed item texts and rationales across a Ray cluster, one encoder "
        "replica per actor (pip install 'slimrec[ray]'); the same vectors.",
    )
    backbones: list[Backbone] = Field(["sasrec"], min_length=1, description="ID backbones.")
    methods: list[str] = Field(
        ["backbone", "backbone+", "slim-", "slim"],
        min_length=1,
        description="Methods to fit (`slimrec methods` lists them): "
        + ", ".join(METHODS)
        + ". An entry may carry its own settings, e.g. `- slim: {fusion: gate}`.",
    )
    method_options: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description="Settings of a method's own config, by method name (what a `- name: "
        "{...}` entry of `methods` gives); checked when the config loads.",
    )
    seeds: list[int] = Field([0], min_length=1, description="Each model is fitted once per seed.")
    train: TrainConfig = Field(
        default_factory=TrainConfig,
        description="Training settings of every fit; backbone, seed and test protocols "
        "come from `backbones`, `seeds` and `eval`.",
    )
    eval: EvalSection = Field(default_factory=EvalSection, description="Test protocols.")
    diagnose: DiagnoseSection = Field(
        default_factory=DiagnoseSection, description="Diagnostics of the fitted models."
    )
    report: ReportSection = Field(default_factory=ReportSection, description="The report.")

    @model_validator(mode="before")
    @classmethod
    def _method_sections(cls, data: Any) -> Any:
        """``methods: [backbone, {slim: {fusion: gate}}]`` -> names + ``method_options``."""
        if not isinstance(data, dict) or not isinstance(data.get("methods"), list):
            return data
        names, options = [], dict(data.get("method_options") or {})
        for entry in data["methods"]:
            if isinstance(entry, dict):
                if len(entry) != 1:
                    raise ValueError(f"a method entry names one method, got {list(entry)}")
                ((name, section),) = entry.items()
                if not isinstance(section, dict):
                    raise ValueError(f"the settings of method {name!r} must be a mapping")
                # On top of method_options, not instead: a saved config keeps a method's
                # settings there, and `--set methods.NAME.KEY=V` adds an entry section.
                earlier = options.get(name)
                options[name] = {**(earlier if isinstance(earlier, dict) else {}), **section}
                entry = name
            names.append(entry)
        return {**data, "methods": names, "method_options": options}

    @field_validator("methods")
    @classmethod
    def _known_methods(cls, methods: list[str]) -> list[str]:
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
        if len(set(methods)) != len(methods):
            raise ValueError("a method is listed twice")
        return methods

    @field_validator("backbones", "seeds")
    @classmethod
    def _distinct(cls, values: list) -> list:
        if len(set(values)) != len(values):
            raise ValueError(f"listed twice: {values}")
        return values

    @model_validator(mode="after")
    def _train_leaves_loops_alone(self) -> RunConfig:
        # A saved config.yaml is a full dump holding the defaults of these fields: only a
        # value other than the default means a user tried to set one.
        defaults = TrainConfig()
        taken = [
            name
            for name in (
                "backbone",
                "method",
                "seed",
                "test_protocols",
                "ks",
                "rationale_holdout",
                "rationale_items",
                "sampled_negatives",
            )
            if getattr(self.train, name) != getattr(defaults, name)
        ]
        if taken:
            raise ValueError(
                f"train.{sorted(taken)[0]} is set by the pipeline: use `backbones`, `seeds`, "
                "`methods`, `eval` or `teacher.prompt` (hold_out_last, max_items) instead"
            )
        return self

    @model_validator(mode="after")
    def _student_turns_where_it_runs(self) -> RunConfig:
        one_turn_on_ray(self.reason.ray, self.teacher.prompt)
        return self

    @model_validator(mode="after")
    def _methods_accept_their_settings(self) -> RunConfig:
        # Every method with its settings, on every backbone: a typo in a model option
        # fails here, not after the teacher ran.
        unknown = sorted(set(self.method_options) - set(self.methods))
        if unknown:
            raise ValueError(f"method_options for {unknown}, which `methods` does not list")
        if monitor_cutoff(self.train.monitor) not in self.eval.ks:
            raise ValueError(
                f"train.monitor {self.train.monitor!r} is not reported: use a cut-off of "
                f"eval.ks {list(self.eval.ks)}, or add it there"
            )
        try:
            for method in self.chosen_methods():
                for backbone in self.backbones:
                    method.check(
                        self.train.model_copy(update={"backbone": backbone, "ks": self.eval.ks})
                    )
        except SlimrecError as e:
            raise ValueError(e.one_line()) from e
        return self

    def method(self, name: str) -> Method:
        """Method ``name`` of this run, with its settings."""
        return get_method(name, **self.method_options.get(name, {}))

    def chosen_methods(self) -> list[Method]:
        return [self.method(m) for m in self.methods]

    def needs(self) -> list[Needs]:
        return [m.needs() for m in self.chosen_methods()]

    def rationales_needed(self) -> set[str]:
        """``{"teacher", "student"}`` or a part of it: which rationales the methods read.

        Student rationales need the teacher's too (the student learns from them), unless
        they come from ``reason.rationales_file``; with neither, the LLM stages are skipped
        altogether.
        """
        needed = {n.user_text[0] for n in self.needs() if n.user_text}
        learns = "student" in needed and self.reason.rationales_file is None
        return needed | ({"teacher"} if learns else set())

    def text_fields(self) -> list[tuple[str, str]]:
        """The distinct (rationales, field) user-text tables the methods read, in order."""
        return list(dict.fromkeys(n.user_text for n in self.needs() if n.user_text))

    def needs_item_text(self) -> bool:
        return any(n.item_text for n in self.needs())
