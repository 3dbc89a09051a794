"""The method registry: names, presets, validated settings, and what each method needs."""

from __future__ import annotations

import pytest

from slimrec.errors import ConfigError
from slimrec.methods import METHODS, Method, MethodConfig, Needs, get_method, register_method
from slimrec.methods.slim import Slim, SlimConfig
from slimrec.training import TrainConfig


def test_every_registered_name_builds_with_its_preset_and_says_what_it_needs():
    for name, entry in METHODS.items():
        method = get_method(name)
        assert method.name == name and isinstance(method, entry.method_cls)
        assert method.description and isinstance(method.needs(), Needs)
        method.check(TrainConfig(model={"dim": 8}))
    assert get_method("slim-").needs().user_text == ("teacher", "response")
    assert get_method("slim-step2").needs().user_text == ("student", "step2")
    assert get_method("backbone+").needs() == Needs(item_text=True)
    assert get_method("text-matching").needs().per_backbone is False
    control = get_method("text-matching-shuffled-text")
    assert control.needs().per_backbone is False and control.config.control == "shuffled"
    concat = get_method("slim-concat-shuffled-text").config
    assert (concat.fusion, concat.control) == ("concat", "shuffled")
    gate = get_method("slim-gate-shuffled-text").config
    assert (gate.fusion, gate.control) == ("gate", "shuffled")


def test_settings_override_the_preset_and_are_validated():
    gate = get_method("slim", fusion="gate")
    assert gate.config.fusion == "gate" and gate.stage_inputs() == {"fusion": "gate"}
    assert get_method("slim-concat").stage_inputs() == {}  # the paper's fits keep their keys
    with pytest.raises(ConfigError, match=r"method 'slim': fusoin.*valid fields"):
        get_method("slim", fusoin="gate")
    with pytest.raises(ConfigError, match="unknown method 'slim2'"):
        get_method("slim2")
    with pytest.raises(ValidationErrorOrConfigError):
        SlimConfig(fusion="sum")


def test_a_name_registers_once_and_a_preset_must_be_valid():
    with pytest.raises(ValueError, match="twice"):
        register_method("slim", SlimConfig, Slim, description="again")
    with pytest.raises(ConfigError):
        register_method("slim-broken", SlimConfig, Slim, description="x", fusion="sum")
    assert "slim-broken" not in METHODS

    class Other(MethodConfig):
        pass

    with pytest.raises(TypeError, match="SlimConfig"):
        register_method("slim-other", Other, Slim, description="x")


def test_check_refuses_options_the_backbone_does_not_know():
    with pytest.raises(ConfigError, match="n_layer"):
        get_method("backbone").check(TrainConfig(model={"n_layer": 2}))
    with pytest.raises(ConfigError, match="base backbone"):
        get_method("slim").check(TrainConfig(backbone="sasrec+"))
    get_method("text-matching").check(TrainConfig(model={"layers": 1, "n_layers": 2}))


ValidationErrorOrConfigError = (ValueError, ConfigError)
assert issubclass(Slim, Method)
