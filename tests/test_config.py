"""config.resolve: defaults <- profile <- overrides, with clear errors for bad names and values."""
import pytest

from conftest import assert_one_line
from helpers.settings import config
from helpers.settings.config import SettingsError


def test_profiles_resolve():
    assert config.profile_names() == ["paper", "quick", "smoke"]
    quick = config.resolve("quick")            # the profile files' own values, as they read
    assert (quick.data_size, quick.image_size, quick.stage1_steps, quick.stage2_steps, quick.stage3a_steps,
            quick.stage3b_steps, quick.stage3_per_class) == (5000, 16, 150, 100, 50, 40, 100)
    smoke = config.resolve("smoke")
    assert (smoke.data_size, smoke.image_size, smoke.stage1_steps, smoke.batch_size) == (300, 16, 3, 32)
    assert config.resolve("paper").image_size == 56
    # A setting no profile mentions keeps the default.
    assert config.resolve("smoke").momentum == config.Settings().momentum


def test_overrides_win_and_none_keeps_profile_value():
    assert config.resolve("smoke", stage1_steps=5).stage1_steps == 5
    assert config.resolve("smoke", stage1_steps=None).stage1_steps == 3


def test_string_overrides_are_coerced():
    s = config.resolve("smoke", stage1_steps="3", stage1_lr="0.2", channels_last="false", seeds="0, 1,2",
                       data="synthetic-sar")
    assert s.stage1_steps == 3 and isinstance(s.stage1_steps, int)
    assert s.stage1_lr == 0.2 and isinstance(s.stage1_lr, float)
    assert s.channels_last is False
    assert s.seeds == [0, 1, 2]
    assert config.resolve("smoke", batch_size=16.0).batch_size == 16


@pytest.mark.parametrize("name, value, expected", [
    ("stage1_epochs", "abc", "setting 'stage1_epochs' must be a whole number, got 'abc'"),
    ("batch_size", 2.5, "setting 'batch_size' must be a whole number, got 2.5"),
    ("stage1_lr", "fast", "setting 'stage1_lr' must be a number, got 'fast'"),
    ("channels_last", "maybe", "setting 'channels_last' must be true or false, got 'maybe'"),
])
def test_bad_types_are_named(name, value, expected):
    with pytest.raises(SettingsError) as e:
        config.resolve("smoke", **{name: value})
    assert assert_one_line(e) == expected


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(SettingsError, match=r"unknown profile 'fast'; valid profiles: paper, quick, smoke") as e:
        config.resolve("fast")
    assert_one_line(e)


def test_unknown_setting_lists_valid_ones():
    with pytest.raises(SettingsError, match=r"unknown setting\(s\) epochs; valid settings: data, data_size, ") as e:
        config.resolve("smoke", epochs=3)
    assert "stage1_epochs" in assert_one_line(e)


@pytest.mark.parametrize("name", ["stage1_epochs", "stage2_epochs", "stage3a_epochs", "stage3b_epochs", "min_stage_steps",
                                  "batch_size", "stage3_per_class", "val_per_class", "test_per_class", "data_size",
                                  "image_size"])
@pytest.mark.parametrize("value", [0, -1])
def test_non_positive_counts_are_rejected(name, value):
    with pytest.raises(SettingsError, match=rf"setting '{name}' must be > 0, got {value}") as e:
        config.resolve("smoke", **{name: value})
    assert_one_line(e)


@pytest.mark.parametrize("name", ["stage1_lr", "stage3b_lr"])
def test_non_positive_learning_rates_are_rejected(name):
    with pytest.raises(SettingsError, match=rf"setting '{name}' must be > 0"):
        config.resolve("smoke", **{name: 0})


def test_negative_workers_and_weight_decay_rejected():
    with pytest.raises(SettingsError, match=r"setting 'num_workers' must be >= 0, got -1"):
        config.resolve("smoke", num_workers=-1)
    with pytest.raises(SettingsError, match=r"setting 'weight_decay' must be >= 0"):
        config.resolve("smoke", weight_decay=-0.1)


def test_tta_views_at_most_three():
    with pytest.raises(SettingsError, match=r"tta_views must be 1, 2 or 3, got 4"):
        config.resolve("smoke", tta_views=4)


def test_settings_errors_are_value_errors():
    # Callers that catch ValueError keep working.
    assert issubclass(SettingsError, ValueError)


def test_overrides_from_picks_settings_only():
    namespace = {"stage1_epochs": "2", "device": None, "unrelated": 5, "seed": 3}
    assert config.overrides_from(namespace) == {"stage1_epochs": "2", "seed": 3}


def test_save_json_is_atomic_and_readable(tmp_path):
    import json
    config.save_json({"a": 1}, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": 1}
    assert not list(tmp_path.glob("*.tmp"))


def test_environment_info_has_versions():
    info = config.environment_info("cpu")
    assert {"python", "torch", "torchvision", "numpy", "device"} <= set(info)
