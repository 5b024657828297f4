"""The live configuration: settings layers merged (code > environment > file >
defaults), named policies, reload, and the generation counter that tells
decorated functions to rebuild."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from buttress import registry
from buttress._core import forksafe, validate
from buttress._core.clock import Clock
from buttress._core.errors import ConfigurationError
from buttress.breaker import CircuitBreaker, CircuitBreakerConfig
from buttress.budget import RetryBudget
from buttress.config.env import (
    _CODE_NAMES,
    DEFAULT_ENV_PREFIX,
    _read_env,
)
from buttress.config.files import (
    _breaker_to_dict,
    _budget_to_dict,
    _check_breaker_names,
    _FileContent,
    _read_file,
    _retry_to_dict,
    _toml_dumps,
    _Where,
)
from buttress.config.overload import overload_from_env, overload_from_mapping
from buttress.config.pipelines import LivePipeline, share_store
from buttress.config.schema import (
    _DEFAULT_LAYER,
    _OPERATION_FIELDS,
    _SWITCHES,
    OPERATION_TYPES,
    Explanation,
    OperationOverrides,
    ResilienceSettings,
    Setting,
    _check_delays,
    _check_field,
    _suggest,
)
from buttress.retry import RetryConfig
from buttress.timeout import TimeoutConfig

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "ResilienceConfig",
    "configure",
    "explain",
    "get_settings",
    "load_env",
    "reset_settings",
    "resilience_config",
]

# --- the live configuration ------------------------------------------------------------------


class ResilienceConfig:
    """The process-wide configuration: settings layers, named policies, and the
    generation counter that tells decorated functions to rebuild.

    Use the shared instance :data:`resilience_config`. Seed ``utils.resilience``
    spellings: ``load_from_file``, ``save_to_file``, ``get_retry_config``,
    ``get_circuit_breaker_config``, ``update_config``, ``configs``::

        resilience_config.load_from_file("resilience_config.json")
        resilience_config.get_retry_config("http_requests").max_attempts   # 3
        resilience_config.save_to_file("resilience_config.toml")
    """

    def __init__(self) -> None:
        self._lock = forksafe.rlock()
        self._generation = 0
        # Breakers this module created: name -> (generation last wanted, breaker).
        # A breaker wanted only by an older generation may be replaced by a new config.
        self._managed: dict[str, tuple[int, CircuitBreaker]] = {}
        self._clear()

    def _clear(self) -> None:
        self._file_layer: dict[str, Setting] = {}
        self._env_layer: dict[str, Setting] = {}
        self._code_layer: dict[str, Setting] = {}
        self._env_prefix: str | None = None
        self._file_path: Path | None = None
        self._file_retry: dict[str, RetryConfig] = {}
        self._file_budgets: dict[str, RetryBudget] = {}
        self._file_breakers: dict[str, CircuitBreakerConfig] = {}
        self._code_retry: dict[str, RetryConfig] = {}
        self._code_breakers: dict[str, CircuitBreakerConfig] = {}
        self._cache: tuple[int, ResilienceSettings, dict[str, Setting]] | None = None

    # -- generation --

    @property
    def generation(self) -> int:
        """Bumped by every change; protected calls rebuild when it moves."""
        return self._generation

    def _bump(self) -> None:
        self._generation += 1
        self._cache = None

    # -- settings --

    def _merge(self, file: Mapping[str, Setting], env: Mapping[str, Setting],
               code: Mapping[str, Setting]) -> tuple[ResilienceSettings, dict[str, Setting]]:
        merged = dict(_DEFAULT_LAYER)
        for layer in (file, env, code):
            merged.update(layer)
        for section in OPERATION_TYPES:
            _check_delays(section, merged)
        settings = ResilienceSettings.from_flat({k: s.value for k, s in merged.items()})
        return settings, merged

    def _effective(self) -> tuple[ResilienceSettings, dict[str, Setting]]:
        cache = self._cache
        if cache is not None and cache[0] == self._generation:
            return cache[1], cache[2]
        with self._lock:
            if self._env_prefix is None:
                # First use: the environment under the default prefix. Not a change
                # anybody has built on yet, so no new generation.
                self._env_layer = _read_env(DEFAULT_ENV_PREFIX, os.environ)
                self._env_prefix = DEFAULT_ENV_PREFIX
            settings, merged = self._merge(self._file_layer, self._env_layer, self._code_layer)
            self._cache = (self._generation, settings, merged)
            return settings, merged

    @property
    def settings(self) -> ResilienceSettings:
        """The effective :class:`ResilienceSettings` (code > env > file > defaults)."""
        return self._effective()[0]

    def load_env(self, prefix: str = DEFAULT_ENV_PREFIX,
                 environ: Mapping[str, str] | None = None) -> ResilienceSettings:
        """Read the environment layer again, from variables named ``<prefix><NAME>``
        (see :data:`ENV_NAMES`), replacing what an earlier call read::

            load_env(prefix="PYNOMALY_")   # PYNOMALY_DATABASE_MAX_ATTEMPTS=5, ...
            load_env(prefix="")            # CIRCUIT_BREAKER_FAILURE_THRESHOLD=5, ...

        A malformed value raises :class:`ConfigurationError` naming the variable and
        its value; nothing changes then.
        """
        if not isinstance(prefix, str):
            raise TypeError(f"load_env prefix must be a str, got {prefix!r}")
        layer = _read_env(prefix, os.environ if environ is None else environ)
        with self._lock:
            self._merge(self._file_layer, layer, self._code_layer)
            self._env_layer, self._env_prefix = layer, prefix
            self._bump()
        return self.settings

    def configure(self, **values: Any) -> ResilienceSettings:
        """Set values in code (the highest layer below call arguments); ``None``
        removes a value set here before::

            configure(resilience_enabled=False)               # every preset passes through
            configure(database_max_attempts=5, default_timeout=2.0)

        Names are the environment names in lower case (``database_timeout``,
        ``retry_max_attempts``, ``circuit_breaker_enabled``) or
        ``<section>_<field>`` (``database_timeout_seconds``).
        """
        layer = dict(self._code_layer)
        for name, value in values.items():
            key = _CODE_NAMES.get(name)
            if key is None:
                raise ConfigurationError(f"configure() got an unknown setting {name!r}"
                                         f"{_suggest(name, _CODE_NAMES)}")
            if value is None:
                layer.pop(key, None)
                continue
            owner, _, field = key.rpartition(".")
            try:
                checked = _check_field(owner, field, value)
            except ConfigurationError as exc:
                raise exc.reworded(f"configure({name}={value!r}): {exc}") from exc
            layer[key] = Setting(key, checked, "code", "configure()")
        with self._lock:
            self._merge(self._file_layer, self._env_layer, layer)
            self._code_layer = layer
            self._bump()
        return self.settings

    def explain(self, operation_type: str | None = None,
                **overrides: Unpack[OperationOverrides]) -> Explanation:
        """Every effective value and where it came from::

            print(explain())                       # all settings
            explain("database")["database.timeout_seconds"].where   # 'env: PYNOMALY_...'

        With ``operation_type``, only the switches and the section that type uses
        (``default`` for types without one); ``overrides`` are call arguments
        (``max_attempts=5``), reported as code.
        """
        merged = self._effective()[1]
        arguments: dict[str, Any] = dict(overrides)
        if operation_type is None:
            if arguments:
                raise TypeError("explain() takes overrides only with an operation_type")
            return Explanation(merged)
        section = operation_type if operation_type in OPERATION_TYPES else "default"
        result = Explanation({key: merged[key] for key in _SWITCHES})
        for field in _OPERATION_FIELDS:
            key = f"{section}.{field}"
            value = arguments.pop(field, None)
            result[key] = (merged[key] if value is None else
                           Setting(key, _check_field("argument", field, value), "code",
                                   "argument"))
        if arguments:
            raise TypeError(f"explain() got unknown overrides {sorted(arguments)}")
        return result

    # -- named policies --

    @property
    def retry_configs(self) -> Mapping[str, RetryConfig]:
        """Named retry configs (from the file, overridden by :meth:`update_config`)."""
        return MappingProxyType({**self._file_retry, **self._code_retry})

    configs = retry_configs
    """Alias of :attr:`retry_configs` (the ``utils.resilience`` seed's attribute)."""

    @property
    def retry_budgets(self) -> Mapping[str, RetryBudget]:
        """The named retry budgets of the loaded file (its ``retry_budgets``
        section, fields overridden by ``<prefix>RETRY_BUDGETS__<NAME>__<FIELD>``),
        which its ``retry_configs`` name with ``budget = "<name>"``. Share one
        with a hedge or a client: ``Hedge(budget=resilience_config.retry_budgets["api"])``.

        .. versionadded:: 0.3
        """
        return MappingProxyType(self._file_budgets)

    @property
    def circuit_breaker_configs(self) -> Mapping[str, CircuitBreakerConfig]:
        """Named breaker configs (from the file, overridden by :meth:`update_config`)."""
        return MappingProxyType({**self._file_breakers, **self._code_breakers})

    def get_retry_config(self, name: str, default: RetryConfig | None = None) -> RetryConfig:
        """The retry config called ``name``; ``default`` if given and there is none,
        else :class:`ConfigurationError` listing the names there are."""
        found = self.retry_configs.get(name, default)
        if found is None:
            raise ConfigurationError(f"no retry config named {name!r}"
                                     f"{_suggest(name, self.retry_configs)}; "
                                     f"known: {sorted(self.retry_configs)}")
        return found

    def get_circuit_breaker_config(self, name: str, default: CircuitBreakerConfig | None = None
                                   ) -> CircuitBreakerConfig:
        """The circuit breaker config called ``name`` (see :meth:`get_retry_config`)."""
        found = self.circuit_breaker_configs.get(name, default)
        if found is None:
            raise ConfigurationError(f"no circuit breaker config named {name!r}"
                                     f"{_suggest(name, self.circuit_breaker_configs)}; "
                                     f"known: {sorted(self.circuit_breaker_configs)}")
        return found

    def update_config(self, name: str, config: RetryConfig | CircuitBreakerConfig) -> None:
        """Set a named policy in code (above the file); protected calls use it from
        their next call. A breaker config still named ``"default"`` takes ``name``."""
        validate.text("update_config", "name", name)
        with self._lock:
            if isinstance(config, RetryConfig):
                self._code_retry[name] = config
            elif isinstance(config, CircuitBreakerConfig):
                if config.name == "default":
                    config = config.replace(name=name)
                merged = {**self._file_breakers, **self._code_breakers, name: config}
                _check_breaker_names({name: config, **merged},
                                     lambda key: f"update_config({name!r})")
                self._code_breakers[name] = config
            else:
                raise TypeError(f"update_config takes a RetryConfig or CircuitBreakerConfig, "
                                f"got {config!r}")
            self._bump()

    # -- files --

    def load_from_file(self, path: str | os.PathLike[str]) -> None:
        """Load settings and named policies from a JSON or TOML file (by suffix),
        replacing what an earlier file set. The ``utils.resilience`` seed's shape::

            {"retry_configs": {"http_requests": {"max_attempts": 3, "base_delay": 1.0,
                                                 "strategy": "jittered_exponential"}},
             "circuit_breaker_configs": {"database": {"failure_threshold": 3,
                                                      "recovery_timeout": 30.0}}}

        plus optional ``resilience_enabled``, ``circuit_breaker_enabled`` and
        ``operations.<type>.<field>``. Exception classes are given by name
        (``"ConnectionError"``, ``"httpx.ConnectError"``). Anything invalid raises one
        :class:`ConfigurationError` naming the file, line, key and value, and
        nothing changes: also for hostile files (not UTF-8, nested more than 32
        levels, integers longer than Python converts, larger than
        :data:`MAX_FILE_BYTES`). A file that cannot be opened raises the
        ``OSError`` of ``open()`` (``FileNotFoundError``, ...), which names it.

        A retry config may name a retry budget of the file's ``retry_budgets``
        section (``budget = "payments"``), shared by every config naming it and
        resolved here; the environment's ``<prefix>RETRY_BUDGETS__<NAME>__<FIELD>``
        variables override its fields (:mod:`buttress.config.overload`). A budget
        whose kind and fields are unchanged survives a :meth:`reload` (or loading
        another file) with its tokens: a reload during an outage does not hand
        out a fresh allowance of retries.

        .. versionchanged:: 0.3 ``retry_configs.<name>.budget``.
        """
        path = Path(path)
        content = _read_file(path, self._budgets_of)
        with self._lock:
            self._merge(content.settings, self._env_layer, self._code_layer)
            self._check_live_breakers(content)
            self._file_layer = content.settings
            self._adopt(content)
            self._file_path = path
            self._bump()

    def _budgets_of(self, data: Mapping[str, Any], where: _Where) -> dict[str, RetryBudget]:
        """The named budgets of a parsed file, the environment laid over them."""
        section = {"retry_budgets": data.get("retry_budgets", {})}
        built = overload_from_mapping(section, _where=where)  # errors name the file line
        prefix = DEFAULT_ENV_PREFIX if self._env_prefix is None else self._env_prefix
        start = f"{prefix}RETRY_BUDGETS__"
        environ = {k: v for k, v in os.environ.items() if k.startswith(start)}
        if environ:
            built = overload_from_env(section, environ=environ, prefix=prefix)
        return built.retry_budgets

    def _adopt(self, content: _FileContent) -> None:
        """Take the file's named policies; a budget equal in kind and fields to the
        one of that name already held is kept (with its tokens), and the retry
        configs naming it use the kept one. Needs the lock."""
        kept: dict[int, RetryBudget] = {}
        budgets: dict[str, RetryBudget] = {}
        for name, budget in content.budgets.items():
            old = self._file_budgets.get(name)
            if old is not None and type(old) is type(budget) and (
                    _budget_to_dict(old) == _budget_to_dict(budget)):
                kept[id(budget)] = budget = old
            budgets[name] = budget
        retry = {name: config.replace(budget=kept[id(config.budget)])
                 if config.budget is not None and id(config.budget) in kept else config
                 for name, config in content.retry.items()}
        self._file_budgets, self._file_retry = budgets, retry
        self._file_breakers = content.breakers

    def _check_live_breakers(self, content: _FileContent) -> None:
        """One breaker name, one config: a file may not redefine a live breaker that
        other code created (breakers this module created for older generations are
        replaced instead)."""
        live = registry.all_circuit_breakers()
        merged = {**content.breakers, **self._code_breakers}
        _check_breaker_names(merged, lambda key: content.where.origin(
            ("circuit_breaker_configs", key, "name")) if key in content.breakers
            else f"update_config({key!r})")
        for key, config in content.breakers.items():
            breaker = live.get(config.name)
            managed = self._managed.get(config.name)
            if (breaker is not None and breaker.config != config
                    and (managed is None or managed[1] is not breaker)):
                raise content.where.error(
                    ("circuit_breaker_configs", key),
                    f"circuit breaker {config.name!r} already exists with a different config "
                    f"(live vs file: {registry.config_difference(breaker.config, config)})")

    def reload(self) -> None:
        """Read the last loaded file and the environment again (with the prefix of
        the last :meth:`load_env`, or ``BUTTRESS_`` once settings have been read);
        protected calls follow the new values from their next call. Raises
        :class:`ConfigurationError` when there is nothing to read again."""
        with self._lock:
            path, prefix = self._file_path, self._env_prefix
        if path is None and prefix is None:
            raise ConfigurationError("reload(): no file was loaded and no environment read")
        content = _read_file(path, self._budgets_of) if path is not None else None
        env = _read_env(prefix, os.environ) if prefix is not None else None
        with self._lock:
            file_layer = content.settings if content is not None else self._file_layer
            env_layer = env if env is not None else self._env_layer
            self._merge(file_layer, env_layer, self._code_layer)
            if content is not None:
                self._check_live_breakers(content)
                self._adopt(content)
            self._file_layer, self._env_layer = file_layer, env_layer
            self._bump()

    def save_to_file(self, path: str | os.PathLike[str]) -> None:
        """Write the effective configuration as JSON or TOML (by suffix): every
        setting that is not a built-in default, and every named policy. Loading the
        file back gives the same settings and policies. The file is replaced
        atomically, so a concurrent :meth:`reload` never reads half of it."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".json", ".toml"):
            raise ConfigurationError(
                f"{path}: unknown configuration file type {suffix!r}; use .json or .toml")
        data = self.as_dict()
        text = json.dumps(data, indent=2) + "\n" if suffix == ".json" else _toml_dumps(data)
        import tempfile  # here: only saving needs it (some 13 ms of `import buttress`)

        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(text)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise

    def as_dict(self) -> dict[str, Any]:
        """The file shape of the effective configuration (what :meth:`save_to_file`
        writes)."""
        data: dict[str, Any] = {}
        operations: dict[str, dict[str, Any]] = {}
        for key, setting in self._effective()[1].items():
            if setting.source == "default":
                continue
            section, _, field = key.rpartition(".")
            if section:
                operations.setdefault(section, {})[field] = setting.value
            else:
                data[key] = setting.value
        if operations:
            data["operations"] = operations
        if self._file_budgets:
            data["retry_budgets"] = {n: _budget_to_dict(b) for n, b in self._file_budgets.items()}
        names = {id(budget): name for name, budget in self._file_budgets.items()}
        data["retry_configs"] = {n: _retry_to_dict(n, c, names)
                                 for n, c in self.retry_configs.items()}
        data["circuit_breaker_configs"] = {
            n: _breaker_to_dict(n, c) for n, c in self.circuit_breaker_configs.items()}
        return data

    # -- protected calls --

    def protect(self, name: str | None = None, *, retry: str | None = None,
                circuit_breaker: str | None = None, timeout: float | TimeoutConfig | None = None,
                clock: Clock | None = None) -> LivePipeline:
        """A decorator (and ``call``/``acall``/``with`` helper) applying named policies,
        looked up at call time so :meth:`reload` changes it without a restart::

            @resilience_config.protect("database")            # retry_configs.database
            def get_user(user_id: int) -> dict: ...           # + circuit_breaker_configs.database

            @resilience_config.protect(retry="http_requests", circuit_breaker="external_apis",
                                       timeout=5.0)
            async def fetch() -> bytes: ...

        ``name`` takes both sections' entries of that name (at least one must exist
        when the call runs); ``retry``/``circuit_breaker`` name one each (it must exist).
        ``timeout`` is applied as :func:`~buttress.timeout` applies it: a sync call
        then runs in a worker thread (the only way to stop waiting for it), so give
        it only to sync functions whose objects may cross threads.
        """
        return _NamedPolicy(name, retry, circuit_breaker, timeout, clock, self)

    def _circuit_breaker(self, config: CircuitBreakerConfig, clock: Clock | None,
                         generation: int, owner: str) -> CircuitBreaker:
        """The registered breaker for ``config``; one created here for an older
        generation is replaced when the config changed, anything else that differs
        is an error (one name, one config)."""
        name = config.name
        with self._lock:
            before = registry.all_circuit_breakers().get(name)
            managed = self._managed.get(name)
            try:
                breaker = registry.get_circuit_breaker(name, config, clock=clock)
            except ConfigurationError as exc:
                existing = registry.get_circuit_breaker(name)
                if managed is None or managed[1] is not existing or managed[0] >= generation:
                    raise ConfigurationError(f"{owner}: {exc}") from exc
                breaker = _replace_circuit_breaker(name, config, clock)
                before = None
            if breaker is not before or (managed is not None and managed[1] is breaker):
                last = managed[0] if managed is not None and managed[1] is breaker else generation
                self._managed[name] = (max(generation, last), breaker)
            return breaker

    def reset(self) -> None:
        """Forget every setting, loaded file, named policy and read environment (for
        tests); protected functions rebuild from built-in defaults on their next call."""
        with self._lock:
            self._clear()
            self._bump()


def _replace_circuit_breaker(name: str, config: CircuitBreakerConfig,
                             clock: Clock | None) -> CircuitBreaker:
    # get_circuit_breaker rightly refuses a second config for a name. A changed
    # setting or a reloaded file is the one legitimate change: the breaker this
    # module created for the old config gives its name to a fresh one (closed,
    # empty counters).
    return registry.replace_circuit_breaker(name, config, clock=clock)


resilience_config: Final = ResilienceConfig()
"""The shared configuration (settings, environment, files, named policies)."""
share_store(resilience_config)


def get_settings() -> ResilienceSettings:
    """The effective settings (code > environment > file > built-in defaults)."""
    return resilience_config.settings


def load_env(prefix: str = DEFAULT_ENV_PREFIX,
             environ: Mapping[str, str] | None = None) -> ResilienceSettings:
    """Read settings from environment variables ``<prefix><NAME>``; see
    :meth:`ResilienceConfig.load_env`::

        load_env(prefix="PYNOMALY_")
    """
    return resilience_config.load_env(prefix, environ)


def configure(**values: Any) -> ResilienceSettings:
    """Set settings in code; see :meth:`ResilienceConfig.configure`::

        configure(resilience_enabled=False)
    """
    return resilience_config.configure(**values)


def explain(operation_type: str | None = None,
            **overrides: Unpack[OperationOverrides]) -> Explanation:
    """Every effective value and where it came from; see
    :meth:`ResilienceConfig.explain`::

        print(explain("database"))
    """
    return resilience_config.explain(operation_type, **overrides)


def reset_settings() -> None:
    """Clear settings, the read environment, loaded files and named policies (for
    tests); the next use reads ``BUTTRESS_*`` again and starts from the defaults."""
    resilience_config.reset()



class _NamedPolicy(LivePipeline):
    """What :meth:`ResilienceConfig.protect` returns."""

    __slots__ = ("circuit_breaker_name", "name", "retry_name", "timeout")

    # Policies are often loaded after the functions using them are decorated.
    _eager = False

    def __init__(self, name: str | None, retry: str | None, circuit_breaker: str | None,
                 timeout: float | TimeoutConfig | None, clock: Clock | None,
                 store: ResilienceConfig | None = None) -> None:
        super().__init__(clock, store=store)
        if name is None and retry is None and circuit_breaker is None:
            raise TypeError("protect() needs a policy name, retry= or circuit_breaker=")
        for field, value in (("name", name), ("retry", retry),
                             ("circuit_breaker", circuit_breaker)):
            if value is not None:
                validate.text("protect", field, value)
        self.name = name
        self.retry_name = retry
        self.circuit_breaker_name = circuit_breaker
        self.timeout = (timeout if timeout is None or isinstance(timeout, TimeoutConfig)
                        else TimeoutConfig(timeout))

    def _assemble(self, settings: ResilienceSettings) -> tuple[
            RetryConfig | None, CircuitBreakerConfig | None, TimeoutConfig | None]:
        # The configuration whose protect() made this (not always the shared one).
        store = self._store
        config = store if isinstance(store, ResilienceConfig) else resilience_config
        retry = (config.get_retry_config(self.retry_name) if self.retry_name is not None
                 else config.retry_configs.get(self.name) if self.name is not None else None)
        breaker = (config.get_circuit_breaker_config(self.circuit_breaker_name)
                   if self.circuit_breaker_name is not None
                   else config.circuit_breaker_configs.get(self.name)
                   if self.name is not None else None)
        if self.name is not None and retry is None and breaker is None and (
                self.retry_name is None or self.circuit_breaker_name is None):
            raise ConfigurationError(
                f"{self._owner()}: no retry or circuit breaker config named {self.name!r}; "
                f"known: {sorted({*config.retry_configs, *config.circuit_breaker_configs})}")
        return retry, breaker, self.timeout

    def _owner(self) -> str:
        parts = [repr(self.name)] if self.name is not None else []
        if self.retry_name is not None:
            parts.append(f"retry={self.retry_name!r}")
        if self.circuit_breaker_name is not None:
            parts.append(f"circuit_breaker={self.circuit_breaker_name!r}")
        return f"resilience_config.protect({', '.join(parts)})"

    def __repr__(self) -> str:
        return self._owner()
