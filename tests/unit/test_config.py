import pytest

from tastemaker.services.config import ConfigError, Settings


def test_defaults_work_on_a_laptop() -> None:
    settings = Settings.from_env({})
    assert settings.grpc_port == 50051 and settings.topic_prefix == "tastemaker"
    assert settings.kafka_bootstrap == "" and settings.redis_url == ""


def test_environment_then_flags() -> None:
    env = {"TASTEMAKER_GRPC_PORT": "6000", "TASTEMAKER_EPSILON": "0.3", "TASTEMAKER_KAFKA_BOOTSTRAP": "k:9092"}
    settings = Settings.from_env(env, grpc_port=7000, epsilon=None)
    assert settings.grpc_port == 7000  # the flag wins
    assert settings.epsilon == 0.3  # an unset flag leaves the environment's value
    assert settings.kafka_bootstrap == "k:9092"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TASTEMAKER_GRPC_PORT": "http"}, "TASTEMAKER_GRPC_PORT='http' is not a valid int"),
        ({"TASTEMAKER_EPSILON": "2"}, "TASTEMAKER_EPSILON must be in"),
        ({"TASTEMAKER_REWARD_WINDOW_S": "-1"}, "TASTEMAKER_REWARD_WINDOW_S must be non-negative"),
        ({"TASTEMAKER_MAX_SHELVES_DEFAULT": "0"}, "TASTEMAKER_MAX_SHELVES_DEFAULT must be positive"),
        ({"TASTEMAKER_LINEAR_FORGET": "0"}, "TASTEMAKER_LINEAR_FORGET must be in"),
        ({"TASTEMAKER_LINEAR_FORGET": "1.5"}, "TASTEMAKER_LINEAR_FORGET must be in"),
        ({"TASTEMAKER_STICKER_CANDIDATES": "0"}, r"TASTEMAKER_STICKER_CANDIDATES must be in \[1, 500\]"),
        ({"TASTEMAKER_STICKER_EPSILON": "1.5"}, r"TASTEMAKER_STICKER_EPSILON must be in \[0, 1\]"),
        ({"TASTEMAKER_STICKER_EPSILON": "-0.1"}, r"TASTEMAKER_STICKER_EPSILON must be in \[0, 1\]"),
        ({"TASTEMAKER_STICKER_CANDIDATES": "501"}, r"TASTEMAKER_STICKER_CANDIDATES must be in \[1, 500\]"),
        ({"TASTEMAKER_KAFKA_COMPRESSION": "brotli"}, "TASTEMAKER_KAFKA_COMPRESSION must be one of none, gzip"),
        ({"TASTEMAKER_STRATEGY": "squarecbx"}, "TASTEMAKER_STRATEGY must be one of .*squarecb"),
        ({"TASTEMAKER_SQUARECB_GAMMA": "-1"}, "TASTEMAKER_SQUARECB_GAMMA must be a finite number >= 0"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(env)
