"""RunConfig: the shipped configs load, and bad ones fail with one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from slimrec.config import load_yaml, save_yaml
from slimrec.errors import ConfigError
from slimrec.pipeline import RunConfig

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


SHIPPED = sorted(p.stem for p in CONFIGS.glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_load(name):
    cfg = load_yaml(RunConfig, CONFIGS / f"{name}.yaml")
    assert cfg.name == name and len(SHIPPED) >= 3
    backbones_only = set(cfg.methods) <= {"backbone", "backbone+"}
    if name.startswith(("llmsrec", "delrec")) or backbones_only:  # nor SR teachers read text
        assert cfg.rationales_needed() == set() and "backbone" in cfg.methods
        return
    # Rationales reused from another run need no teacher here.
    reused = cfg.reason.rationales_file is not None
    assert cfg.rationales_needed() == ({"student"} if reused else {"teacher", "student"})
    assert cfg.teacher.prompt.hold_out_last == 1  # no shipped run fuses leaked rationales
    assert ("student", "response") in cfg.text_fields()


@pytest.mark.parametrize("name", SHIPPED)
def test_saved_config_loads_back_identically(name, tmp_path):
    from slimrec.config import save_yaml

    cfg = load_yaml(RunConfig, CONFIGS / f"{name}.yaml")
    save_yaml(cfg, tmp_path / "config.yaml")  # a full dump, as in every run folder
    assert load_yaml(RunConfig, tmp_path / "config.yaml") == cfg


def test_quickstart_is_the_embedded_default_with_local_models():
    cfg = load_yaml(RunConfig, CONFIGS / "quickstart.yaml")
    assert cfg.data.source.dataset == "ml-100k"
    # local and shipped: the 0.5B through llama.cpp, held to the three steps by a grammar
    assert cfg.teacher.backend == "llamacpp" and cfg.teacher.model == "qwen2.5-coder-0.5b"
    assert cfg.teacher.structured
    assert cfg.student.base_model == "smollm2-135m"
    assert set(cfg.methods) >= {"backbone", "backbone+", "slim-", "slim"}


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"teacher": {"n_user": 3}}, "teacher.n_user"),
        ({"methods": ["slim", "magic"]}, "unknown method"),
        ({"methods": ["slim", "slim"]}, "listed twice"),
        ({"backbones": ["bert4rec"]}, "backbones.0"),
        ({"train": {"backbone": "gru4rec"}}, "train.backbone is set by the pipeline"),
        ({"train": {"seed": 3}}, "train.seed is set by the pipeline"),
        ({"train": {"rationale_holdout": 1}}, "`teacher.prompt` (hold_out_last"),
        ({"train": {"rationale_items": 5}}, "train.rationale_items is set by the pipeline"),
        ({"eval": {"protocols": ["loo"]}}, "eval.protocols.0"),
        ({"student": {"epochs": 0}}, "student.epochs"),
        ({"encoder_device": "gpu"}, "encoder_device"),
        # Typos in model or method options fail when the config loads, before any stage.
        ({"train": {"model": {"n_layer": 2}}}, "unknown option(s) ['n_layer'] for backbone"),
        ({"methods": ["backbone", {"slim": {"fusoin": "gate"}}]}, "method 'slim': fusoin"),
        ({"methods": [{"slim": {"fusion": "sum"}}]}, "method 'slim': fusion"),
        ({"methods": ["slim"], "method_options": {"slim-gate": {}}}, "does not list"),
        ({"methods": [{"slim": "gate"}]}, "must be a mapping"),
        # A monitor the validation does not report fails at load, not after an epoch.
        ({"train": {"monitor": "ndcg10"}}, "train.monitor"),
        ({"train": {"monitor": "ndcg@5"}}, "train.monitor 'ndcg@5' is not reported"),
        ({"methods": [{"llm-srec": {"monitor": "hit@50"}}]}, "monitor 'hit@50' is not reported"),
    ],
)
def test_bad_configs_fail_with_one_line(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_yaml(RunConfig, path)
    line = info.value.one_line()
    assert message in line and str(path) in line and "\n" not in line
    assert line.count("fix:") <= 1 and "Value error" not in line


def test_rationales_and_tables_follow_the_methods():
    assert RunConfig(methods=["backbone", "backbone+"]).rationales_needed() == set()
    assert RunConfig(methods=["backbone"]).needs_item_text() is False
    teacher_only = RunConfig(methods=["slim-"])
    assert teacher_only.rationales_needed() == {"teacher"}
    steps = RunConfig(methods=["slim", "slim-step2", "text-matching"])
    assert steps.text_fields() == [("student", "response"), ("student", "step2")]
    assert steps.rationales_needed() == {"teacher", "student"}  # the student learns from it


def test_a_method_entry_carries_its_own_settings(tmp_path):
    path = write(tmp_path, {"methods": ["backbone", {"slim": {"fusion": "gate"}}]})
    cfg = load_yaml(RunConfig, path)
    assert cfg.methods == ["backbone", "slim"]
    assert cfg.method_options == {"slim": {"fusion": "gate"}}
    assert cfg.method("slim").config.fusion == "gate"
    assert cfg.method("backbone").config.item_text is False
    save_yaml(cfg, tmp_path / "saved.yaml")  # the run folder's copy loads back the same
    assert load_yaml(RunConfig, tmp_path / "saved.yaml") == cfg
    # text matching takes its options from `train.model` too; SASRec does not know them
    RunConfig(methods=["text-matching"], train={"model": {"layers": 1, "n_layers": 1}})
    with pytest.raises(ValueError, match=r"'layers'.* for backbone 'sasrec'"):
        RunConfig(methods=["text-matching", "slim"], train={"model": {"layers": 1}})


def test_teacher_section_is_a_teacher_config():
    cfg = RunConfig(teacher={"backend": "openai", "model": "m", "n_users": 5, "seed": 2})
    teacher = cfg.teacher.teacher_config()
    assert teacher.model == "m" and not hasattr(teacher, "n_users")


def test_reason_section_is_the_student_reason_config_less_what_the_pipeline_fills():
    from slimrec.methods.slim.student.reason import ReasonConfig
    from slimrec.pipeline.config import ReasonSection

    filled = {"base_model", "adapter", "prompt", "users"}
    pipeline_only = {"rationales_file"}  # instead of the student: no ReasonConfig then
    assert (
        set(ReasonSection.model_fields) - pipeline_only == set(ReasonConfig.model_fields) - filled
    )
    section = ReasonSection(sampling={"max_new_tokens": 7}, batch_size=3)
    cfg = ReasonConfig(**section.model_dump(), base_model="m", adapter=None)
    assert cfg.sampling.max_new_tokens == 7 and cfg.batch_size == 3


def test_the_sampled_protocols_negatives_reach_every_fit_and_keys_stay_put():
    from slimrec.training import TrainConfig

    assert "sampled_negatives" not in TrainConfig().model_dump()  # old run keys stay valid
    assert "lr_decay" not in TrainConfig().model_dump()
    assert TrainConfig(sampled_negatives=99).model_dump()["sampled_negatives"] == 99
    with pytest.raises(ValueError, match=r"train\.sampled_negatives is set by the pipeline"):
        RunConfig(train={"sampled_negatives": 99})
