"""Every setting of the product, read from the environment once and validated.

``load_settings()`` is called once at process start (worker, CLI, benchmark
scripts) and the result is passed on: to ``build_worker``, the intake and the
CLI commands. Nothing else reads ``os.environ`` for these names.

A bad value is a :class:`SettingsError` whose message is one line naming the
variable and what it accepts; entry points print it and exit 2.
"""

from __future__ import annotations

import os
from datetime import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.envconfig import ClientConfigProfile
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from support.codec import parse_keys
from support.strategy import Strategy, StrategyError, default_strategy, load_strategy
from support.metrics import parse_bind
from workflows import rules

DEFAULT_TASK_QUEUE = "collections"
DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
DATABASE_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")


class SettingsError(ValueError):
    """A setting from the environment is wrong: one line, naming the variable."""


class Settings(BaseSettings):
    """The effective configuration. Field ``description`` is the help text of
    ``collections settings``; the environment variable is the alias."""

    model_config = SettingsConfigDict(extra="ignore", case_sensitive=True, frozen=True, populate_by_name=True)

    # Temporal
    # Temporal: the `temporal` CLI's conventions (temporalio.envconfig): a TOML profile
    # (TEMPORAL_CONFIG_FILE, TEMPORAL_PROFILE) and TEMPORAL_* variables over it, TLS and API key included.
    temporal_address: str = Field(DEFAULT_TEMPORAL_ADDRESS, validation_alias="TEMPORAL_ADDRESS",
                                  description="Temporal frontend host:port (default: the profile's, else "
                                              f"{DEFAULT_TEMPORAL_ADDRESS})")
    temporal_namespace: str = Field("default", validation_alias="TEMPORAL_NAMESPACE",
                                    description="Temporal namespace (default: the profile's, else default)")
    temporal_profile: str | None = Field(None, validation_alias="TEMPORAL_PROFILE",
                                         description="profile of the Temporal config file (default: default)")
    temporal_config_file: Path | None = Field(None, validation_alias="TEMPORAL_CONFIG_FILE",
                                              description="Temporal TOML config file (default: the temporal CLI's)")
    temporal_api_key: SecretStr | None = Field(None, validation_alias="TEMPORAL_API_KEY",
                                               description="API key (Temporal Cloud); implies TLS")
    temporal_tls: bool | None = Field(None, validation_alias="TEMPORAL_TLS",
                                      description="TLS to Temporal (TEMPORAL_TLS_* give certificates)")
    task_queue: str = Field(DEFAULT_TASK_QUEUE, validation_alias="COLLECTIONS_TASK_QUEUE", min_length=1,
                            description="task queue of the case workflows and activities")
    temporal_timeout: float = Field(10.0, validation_alias="COLLECTIONS_TEMPORAL_TIMEOUT", ge=1, le=300,
                                    description="seconds a command retries an unreachable Temporal before it "
                                                "stops and says so (a call Temporal does not answer: at least "
                                                "30 s)")
    # Database
    database_url: str = Field("", validation_alias="DATABASE_URL",
                              description="SQLAlchemy URL (default: ./collections.db, SQLite)")
    # Worker
    max_cached_cases: int = Field(10000, validation_alias="COLLECTIONS_MAX_CACHED_CASES", ge=1,
                                  description="cases a worker keeps in memory at most (an evicted case replays on "
                                              "wake-up); fewer if COLLECTIONS_WORKER_MEMORY_MB allows fewer")
    worker_memory_mb: int = Field(1024, validation_alias="COLLECTIONS_WORKER_MEMORY_MB", ge=256, le=1_048_576,
                                  description="memory budget of a worker process in MiB (256 or more): it keeps "
                                              "no more cases cached than fit in it")
    metrics_bind: str | None = Field(None, validation_alias="COLLECTIONS_METRICS_BIND",
                                     description="HOST:PORT where the worker serves /metrics, /healthz and /readyz "
                                                 "(default: not served)")
    adapters: str = Field("simulated", validation_alias="COLLECTIONS_ADAPTERS", pattern=r"^(simulated|[\w.]+(:\w+)?)$",
                          description="outside systems: 'simulated' or 'package.module:factory'")
    score_model: str | None = Field(
        None, validation_alias="COLLECTIONS_SCORE_MODEL",
        description="a recovery score model (`collections lab train`): each new case is scored when it opens "
                    "(default: no score)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] | None = Field(
        None, validation_alias="LOG_LEVEL", description="log level (default INFO for the worker, ERROR for the CLI)")
    payload_keys: SecretStr | None = Field(None, validation_alias="COLLECTIONS_PAYLOAD_KEYS",
                                           description="payload encryption keys 'id:base64,…' (first one encrypts)")
    codec_token: SecretStr | None = Field(None, validation_alias="COLLECTIONS_CODEC_TOKEN", min_length=16,
                                          description="token the Web UI's codec server requires (default: a new one "
                                                      "each start, printed)")
    # Operators
    operator: str | None = Field(None, validation_alias="COLLECTIONS_OPERATOR", max_length=128,
                                 description="who operator commands name as their actor (default: the login name; "
                                             "--operator overrides)")
    desk_secret: SecretStr | None = Field(None, validation_alias="COLLECTIONS_DESK_SECRET",
                                          description="key that signs the web desk's session cookies, at least 32 "
                                                      "characters (default: a new one each start, with a warning: "
                                                      "sessions end when the desk restarts)")
    desk_https: bool = Field(False, validation_alias="COLLECTIONS_DESK_HTTPS",
                             description="the web desk is served over HTTPS (session cookies marked Secure)")
    # Cases
    installment_grace_days: int = Field(rules.INSTALLMENT_GRACE_DAYS, ge=0, le=31,
                                        validation_alias="COLLECTIONS_INSTALLMENT_GRACE_DAYS",
                                        description="days after an installment's due date before it is missed")
    complaint_threshold: int = Field(rules.COMPLAINT_THRESHOLD, ge=1, validation_alias="COLLECTIONS_COMPLAINT_THRESHOLD",
                                     description="complaints against a team in one day above this suspend it")
    letter_attempts: int = Field(rules.LETTER_ATTEMPTS, ge=1, le=10, validation_alias="COLLECTIONS_LETTER_ATTEMPTS",
                                 description="electronic service tries of the legal notice (one a contact day) "
                                             "before it is sent by post")
    # People in the loop (SPEC §8): which steps go to the work desk
    call_centre: Literal["desk", "simulated"] = Field(
        "simulated", validation_alias="COLLECTIONS_CALL_CENTRE",
        description="who makes the day-3 human call and reviews an empty skip trace: 'desk' (people, as work "
                    "items) or 'simulated'")
    court: Literal["desk", "simulated"] = Field(
        "simulated", validation_alias="COLLECTIONS_COURT",
        description="who reports the court's answers: 'desk' (legal staff enter them) or 'simulated'")
    desk_teams: str | None = Field(
        None, validation_alias="COLLECTIONS_DESK_TEAMS", pattern=r"^\s*[\w.-]+(\s*,\s*[\w.-]+)*\s*$",
        description="comma-separated teams whose cases go to the desk (default: every team)")
    # Contact rules (SPEC §3): stricter than the defaults is allowed, looser is refused.
    max_connected_calls: int = Field(rules.DEFAULT_RULES.max_connected_calls_per_debtor_per_day, ge=1,
                                     le=rules.DEFAULT_RULES.max_connected_calls_per_debtor_per_day,
                                     validation_alias="COLLECTIONS_MAX_CONNECTED_CALLS",
                                     description="connected calls per debtor per local day")
    max_dial_attempts: int = Field(rules.DEFAULT_RULES.max_dial_attempts_per_number_per_day, ge=1,
                                   le=rules.DEFAULT_RULES.max_dial_attempts_per_number_per_day,
                                   validation_alias="COLLECTIONS_MAX_DIAL_ATTEMPTS",
                                   description="dial attempts per phone number per local day")
    quiet_start: time = Field(rules.DEFAULT_RULES.quiet_start, validation_alias="COLLECTIONS_QUIET_START",
                              description="debtor-local time quiet hours begin (HH:MM, 12:00-22:00)")
    quiet_end: time = Field(rules.DEFAULT_RULES.quiet_end, validation_alias="COLLECTIONS_QUIET_END",
                            description="debtor-local time quiet hours end (HH:MM, 08:00-12:00)")
    recording_retention_days: int = Field(rules.DEFAULT_RULES.recording_retention_days,
                                          ge=rules.MIN_RECORDING_RETENTION_DAYS,
                                          validation_alias="COLLECTIONS_RECORDING_RETENTION_DAYS",
                                          description="days a call recording is kept (at least 730)")
    # Strategy (SPEC §9): ladder, plan terms, legal thresholds, contact hours and caps
    strategy: Path | None = Field(None, validation_alias="COLLECTIONS_STRATEGY",
                                  description="strategy TOML file new cases follow (default: the built-in "
                                              "default, samples/strategies/default.toml)")
    _strategy: Strategy = PrivateAttr(default_factory=default_strategy)

    @field_validator("strategy")
    @classmethod
    def _strategy_file(cls, v: Path | None) -> Path | None:
        if v is not None:
            try:
                load_strategy(v)
            except StrategyError as e:
                raise ValueError(str(e)) from None
        return v

    @model_validator(mode="after")
    def _load_strategy(self) -> Settings:
        if self.strategy is not None:
            self._strategy = load_strategy(self.strategy)
        return self

    @property
    def active_strategy(self) -> Strategy:
        """The strategy the intake puts into each new case (COLLECTIONS_STRATEGY, else the default)."""
        return self._strategy

    @property
    def case_contact_rules(self) -> rules.ContactRules:
        """The contact rules a new case plans with: the settings' made stricter by its strategy's."""
        return rules.strictest(self.contact_rules, self._strategy.contact_rules())

    @field_validator("payload_keys")
    @classmethod
    def _payload_keys(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and v.get_secret_value().strip():
            parse_keys(v.get_secret_value().strip())  # PayloadKeyError is a ValueError: one line
        return v

    @field_validator("temporal_address")
    @classmethod
    def _temporal_address(cls, v: str) -> str:
        host, sep, port = v.strip().rpartition(":")
        if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError("must be host:port with a port 1-65535, like localhost:7233")
        return v.strip()

    @field_validator("metrics_bind")
    @classmethod
    def _metrics_bind(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        parse_bind(v)  # a ValueError saying what is accepted
        return v.strip()

    @field_validator("score_model")
    @classmethod
    def _score_model(cls, v: str | None) -> str | None:
        if v is None or not v.strip():
            return None
        if not Path(v.strip()).is_file():  # its shape is checked where it is loaded (the worker)
            raise ValueError(f"no such file: {v.strip()}")
        return v.strip()

    @field_validator("desk_secret")
    @classmethod
    def _desk_secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and len(v.get_secret_value().strip()) < 32:
            raise ValueError("must be at least 32 characters (python -c 'import secrets; "
                             "print(secrets.token_urlsafe(48))' makes one)")
        return v

    @field_validator("operator")
    @classmethod
    def _operator(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("must name someone (or be unset: the login name)")
        return v.strip() if v is not None else None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, v: str) -> str:
        if not v:
            return v  # the default is filled in below
        try:
            driver = make_url(v).drivername
        except ArgumentError:
            driver = None
        if driver not in DATABASE_DRIVERS:
            raise ValueError("must be a SQLAlchemy URL with an async driver: sqlite+aiosqlite:///PATH or "
                             "postgresql+asyncpg://USER@HOST/DB")
        return v

    @field_validator("quiet_start")
    @classmethod
    def _quiet_start(cls, v: time) -> time:
        if not time(12, 0) <= v <= rules.DEFAULT_RULES.quiet_start:
            raise ValueError("quiet hours may start between 12:00 and 22:00")
        return v

    @field_validator("quiet_end")
    @classmethod
    def _quiet_end(cls, v: time) -> time:
        if not rules.DEFAULT_RULES.quiet_end <= v <= time(12, 0):
            raise ValueError("quiet hours may end between 08:00 and 12:00")
        return v

    _temporal_profile: ClientConfigProfile = PrivateAttr()

    @model_validator(mode="after")
    def _temporal_connection(self) -> Settings:
        """Resolve the Temporal connection once, as the `temporal` CLI would."""
        if self.temporal_config_file is not None and not self.temporal_config_file.is_file():
            raise ValueError(f"TEMPORAL_CONFIG_FILE={str(self.temporal_config_file)!r} is not accepted: no such file")
        env = {k: v for k, v in os.environ.items() if k.startswith("TEMPORAL_")}
        set_here = self.model_fields_set  # given to load_settings or found in the environment
        for name, var in (("temporal_address", "TEMPORAL_ADDRESS"), ("temporal_namespace", "TEMPORAL_NAMESPACE")):
            if name in set_here:
                env[var] = getattr(self, name)
            else:
                env.pop(var, None)
        try:
            profile = ClientConfigProfile.load(
                profile=self.temporal_profile, config_source=self.temporal_config_file, override_env_vars=env)
        except Exception as e:  # the SDK's ConfigError: a missing profile, a bad TOML file, a missing cert
            source = self.temporal_config_file or "the temporal CLI's config file"
            raise ValueError(f"TEMPORAL_PROFILE={self.temporal_profile or 'default'!r} in {source}"
                             f" is not accepted: {e}") from None
        object.__setattr__(self, "temporal_address", profile.address or DEFAULT_TEMPORAL_ADDRESS)
        object.__setattr__(self, "temporal_namespace", profile.namespace or "default")
        object.__setattr__(self, "temporal_api_key", SecretStr(profile.api_key) if profile.api_key else None)
        object.__setattr__(self, "temporal_tls", bool(profile.to_client_connect_config().get("tls")))
        self._temporal_profile = profile
        return self

    def temporal_connect_config(self) -> dict[str, Any]:
        """Keyword arguments for ``Client.connect`` (address, namespace, TLS, API key)."""
        config = dict(self._temporal_profile.to_client_connect_config())
        config["target_host"] = self.temporal_address
        config["namespace"] = self.temporal_namespace
        return config

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite+aiosqlite:///{Path.cwd() / 'collections.db'}")
        return self

    @property
    def contact_rules(self) -> rules.ContactRules:
        """The contact rules the worker enforces and every case plans with."""
        return rules.ContactRules(
            max_connected_calls_per_debtor_per_day=self.max_connected_calls,
            max_dial_attempts_per_number_per_day=self.max_dial_attempts,
            quiet_start=self.quiet_start,
            quiet_end=self.quiet_end,
            recording_retention_days=self.recording_retention_days,
        )

    def desk_steps(self, team_id: str | None) -> list[str]:
        """The steps people do for a case handled by ``team_id`` (its routed
        team): written into the case's input at intake, so a case keeps them."""
        teams = {t.strip() for t in (self.desk_teams or "").split(",") if t.strip()}
        if teams and team_id not in teams:
            return []
        steps = ["human_call", "skip_trace_review"] if self.call_centre == "desk" else []
        return steps + (["court_entry"] if self.court == "desk" else [])

    def effective(self) -> list[tuple[str, str, str]]:
        """(variable, value, description) for every setting, secrets masked."""
        rows = []
        for name, field in type(self).model_fields.items():
            alias = field.validation_alias
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown = "******** (set)"
            elif value is None:
                shown = "(not set)"
            elif isinstance(value, time):
                shown = f"{value:%H:%M}"
            else:
                shown = _mask_url(str(value)) if name == "database_url" else str(value)
            rows.append((str(alias), shown, field.description or ""))
        return rows


def _mask_url(url: str) -> str:
    """A database URL without its password."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, creds = head.partition("://")
    user, colon, _password = creds.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{tail}"


def _one_line(err: ValidationError) -> str:
    first = err.errors()[0]
    if not first["loc"]:  # a check across settings names its variables itself
        return first["msg"].removeprefix("Value error, ")
    key = str(first["loc"][0]) if first["loc"] else ""
    field = next((f for n, f in Settings.model_fields.items() if key in (n, str(f.validation_alias))), None)
    name = str(field.validation_alias) if field is not None else key or "settings"
    msg = first["msg"].removeprefix("Value error, ")
    accepted = f" ({field.description})" if field is not None and field.description else ""
    shown = first.get("input")
    if field is not None and "SecretStr" in str(field.annotation):
        shown = "********"  # a secret is never echoed
    elif name == "DATABASE_URL" and isinstance(shown, str):
        shown = _mask_url(shown)
    return f"{name}={shown!r} is not accepted: {msg}{accepted}"


def load_settings(**overrides: Any) -> Settings:
    """Read the environment once; ``overrides`` (field names) win, for tests."""
    try:
        return Settings(**overrides)
    except ValidationError as e:
        raise SettingsError(_one_line(e)) from None
