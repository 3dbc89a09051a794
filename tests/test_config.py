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
