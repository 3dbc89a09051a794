"""Typed configs from YAML: one-line errors naming the file, for every way a file is wrong."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from slimrec.config import load_yaml
from slimrec.errors import ConfigError


class Settings(BaseModel):
    epochs: int = 200
    train: dict = {}


def test_a_key_given_twice_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\ntrain: {lr: 0.1}\nepochs: 4\n")
    with pytest.raises(ConfigError, match=r"key 'epochs' appears twice \(line 3\)") as info:
        load_yaml(Settings, path)
    assert str(path) in info.value.one_line()
    # nested mappings too, and a key repeated in different mappings is fine
    path.write_text("train: {lr: 0.1, lr: 0.2}\n")
    with pytest.raises(ConfigError, match="'lr' appears twice"):
        load_yaml(Settings, path)
    path.write_text("epochs: 3\ntrain: {epochs: 1}\n")
    assert load_yaml(Settings, path).epochs == 3


def test_an_empty_file_is_refused_rather_than_run_with_every_default(tmp_path):
    path = tmp_path / "c.yaml"
    for text in ("", "# only a comment\n"):
        path.write_text(text)
        with pytest.raises(ConfigError, match="empty"):
            load_yaml(Settings, path)
    path.write_text("{}\n")  # an explicit empty mapping says "all defaults"
    assert load_yaml(Settings, path).epochs == 200


def test_a_folder_given_as_the_config_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the config") as info:
        load_yaml(Settings, tmp_path)
    assert "\n" not in info.value.one_line()


def test_a_config_rebuilt_from_another_calls_the_real_url_not_its_redacted_dump(tmp_path):
    from slimrec.cli import _config
    from slimrec.methods.slim.teach import TeacherConfig
    from slimrec.pipeline.config import TeacherSection

    url = "http://bob:hunter2@127.0.0.1:9/v1?api-key=K42&deployment=d1"
    section = TeacherSection(backend="openai", model="m", base_url=url, n_users=3)
    assert "hunter2" not in str(section.model_dump())  # dumps feed files: redacted
    assert section.teacher_config().base_url == url  # ... the teacher calls the real one
    path = tmp_path / "teacher.yaml"
    path.write_text(f"backend: openai\nmodel: m\nbase_url: '{url}'\n")
    assert _config(TeacherConfig, path, {"concurrency": 2}).base_url == url


def test_a_setting_from_the_command_line_changes_one_value_read_as_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\ntrain: {lr: 0.1, layers: [a, b]}\n")
    settings = ["epochs=7", "train.lr=0.0003", "train.layers.1=c", "train.new.depth= 2"]
    loaded = load_yaml(Settings, path, settings)
    assert loaded.epochs == 7
    assert loaded.train == {"lr": 0.0003, "layers": ["a", "c"], "new": {"depth": 2}}
    assert load_yaml(Settings, path).epochs == 3  # the file is as it was


def test_a_setting_reaches_a_method_entry_by_its_name():
    from slimrec.config import with_settings

    data = {"methods": ["backbone", {"llm-srec": {"epochs": 10, "batch_size": 8}}]}
    changed = with_settings(data, ["methods.llm-srec.epochs=3", "methods.backbone.x=1"])
    assert changed["methods"] == [
        {"backbone": {"x": 1}},
        {"llm-srec": {"epochs": 3, "batch_size": 8}},
    ]
    assert data["methods"][1]["llm-srec"]["epochs"] == 10  # the caller's data is untouched
    # A shorter list keeps the settings of the entries it names again.
    fewer = with_settings(data, ["methods=[llm-srec, slim]"])
    assert fewer["methods"] == [{"llm-srec": {"epochs": 10, "batch_size": 8}}, "slim"]


@pytest.mark.parametrize(
    ("setting", "needle"),
    [
        ("epochs", "'epochs' is not KEY=VALUE"),
        ("=3", "is not KEY=VALUE"),
        ("train..lr=3", "is not KEY=VALUE"),
        ("epochs=[1", "--set epochs: the value is not valid YAML"),
        ("epochs=many", "--set epochs: invalid value for epochs"),
        ("train.layers.5=x", "--set train.layers.5: the list has 2 entries, not 6"),
        ("train.layers.z=x", "--set train.layers.z: no entry 'z' in the list"),
        ("epochs.x=1", "--set epochs.x: 'epochs' is not a section"),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(tmp_path, setting, needle):
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 3\ntrain: {layers: [a, b]}\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(Settings, path, [setting])
    assert needle in info.value.one_line() and "\n" not in info.value.one_line()


def test_an_unknown_setting_of_a_run_is_blamed_on_its_set(tmp_path):
    from slimrec.pipeline import RunConfig

    path = tmp_path / "run.yaml"
    path.write_text("name: x\nseeds: [0, 1, 2]\n")
    assert load_yaml(RunConfig, path, ["seeds=[0]"]).seeds == [0]
    with pytest.raises(ConfigError, match=r"^--set train.epochz: .*epochz"):
        load_yaml(RunConfig, path, ["seeds=[0]", "train.epochz=3"])


def test_a_setting_of_a_method_goes_on_top_of_its_saved_settings(tmp_path):
    from slimrec.pipeline import RunConfig

    path = tmp_path / "run.yaml"  # as a run folder's config.yaml holds them
    path.write_text(
        "name: x\nmethods: [backbone, llm-srec]\n"
        "method_options: {llm-srec: {history_items: 10, epochs: 10}}\n"
    )
    loaded = load_yaml(RunConfig, path, ["methods.llm-srec.epochs=3"])
    assert loaded.method_options["llm-srec"] == {"history_items": 10, "epochs": 3}
    with pytest.raises(ConfigError, match=r"^--set methods.llm-srec.epochs: .*llm-srec"):
        load_yaml(RunConfig, path, ["methods.llm-srec.epochs=many"])
