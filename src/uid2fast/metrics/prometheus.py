"""The clients' and refreshers' metrics for ``prometheus_client`` (the optional extra ``uid2fast[prometheus]``).

:func:`register` adds a :class:`MetricsCollector` to a registry; it reads each source's ``metrics()`` snapshot
when the registry is scraped (no thread, no polling), every series labelled with the name the source was
registered under (``client``), so several clients share one registry:

======================================================  =======  ====================================================
``uid2fast_keyset_age_seconds``                         gauge    seconds since the current key set was installed
``uid2fast_newest_key_age_seconds``                     gauge    seconds since its newest key was created
``uid2fast_keyset_keys``                                gauge    keys in the current key set
``uid2fast_keyset_installed_timestamp_seconds``         gauge    when the current key set was installed (Unix time)
``uid2fast_last_refresh_timestamp_seconds``             gauge    when the last refresh attempt ended
``uid2fast_last_refresh_success``                       gauge    1 if it succeeded, 0 if it failed
``uid2fast_last_successful_refresh_timestamp_seconds``  gauge    when the last successful refresh ended
``uid2fast_last_refresh_info``                          info     ``result`` and ``reason`` of the last attempt
``uid2fast_key_refresh_total``                          counter  refresh attempts by ``result`` (success, failure)
``uid2fast_decrypt_total``                              counter  decrypt calls (batch rows) by ``status``
``uid2fast_encrypt_total``                              counter  encrypt calls (batch rows) by ``status``
======================================================  =======  ====================================================

A series with no value yet (no key set, no refresh) is left out. ``status`` is the ``DecryptionStatus`` /
``EncryptionStatus`` member name in lower case (``success``, ``expired_token``, ...).
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Iterator, List, Mapping, Optional

try:
    from prometheus_client import REGISTRY
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily
    from prometheus_client.registry import Collector, CollectorRegistry
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("uid2fast.metrics.prometheus needs prometheus_client, the optional extra "
                      "'prometheus': pip install 'uid2fast[prometheus]'") from exc

from . import Metrics

__all__ = ["MetricsCollector", "register"]

_log = logging.getLogger("uid2fast.metrics")

_REASON_MAX = 256  # characters of a failure reason kept in the info label

_GAUGES = (
    ("uid2fast_keyset_age_seconds", "Seconds since the current UID2/EUID key set was installed."),
    ("uid2fast_newest_key_age_seconds", "Seconds since the newest key of the current key set was created."),
    ("uid2fast_keyset_keys", "Keys in the current key set."),
    ("uid2fast_keyset_installed_timestamp_seconds", "Unix time the current key set was installed."),
    ("uid2fast_last_refresh_timestamp_seconds", "Unix time the last key refresh attempt ended."),
    ("uid2fast_last_refresh_success", "1 if the last key refresh attempt succeeded, 0 if it failed."),
    ("uid2fast_last_successful_refresh_timestamp_seconds", "Unix time the last successful key refresh ended."),
)


def _gauge_values(m: Metrics) -> List[Optional[float]]:
    def ts(value: Any) -> Optional[float]:
        return None if value is None else value.timestamp()

    return [m.keyset_age_seconds, m.newest_key_age_seconds, m.key_count, ts(m.keyset_installed_time),
            ts(m.last_refresh_time), None if m.last_refresh_success is None else float(m.last_refresh_success),
            ts(m.last_success_time)]


class MetricsCollector(Collector):
    """A ``prometheus_client`` collector of uid2fast metrics: one per registry, any number of sources.

    Parameters
    ----------
    sources : Mapping[str, object], optional
        Name (the ``client`` label) to a client or refresher: anything with ``metrics()`` returning
        :class:`uid2fast.metrics.Metrics`. :meth:`add` and :meth:`remove` change them later.
    """

    def __init__(self, sources: Optional[Mapping[str, Any]] = None) -> None:
        self._lock = threading.Lock()
        self._sources: Dict[str, Any] = {}
        for name, source in (sources or {}).items():
            self.add(name, source)

    def add(self, name: str, source: Any) -> None:
        """Collect ``source`` under ``client="name"`` (a ValueError for a name already taken)."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"the name must be a non-empty str, got {name!r}")
        if not callable(getattr(source, "metrics", None)):
            raise TypeError(f"{type(source).__name__} has no metrics(): pass a client or a refresher")
        with self._lock:
            if name in self._sources:
                raise ValueError(f"a source named {name!r} is already collected")
            self._sources[name] = source

    def remove(self, name: str) -> None:
        """Stop collecting the source named ``name`` (a KeyError if there is none)."""
        with self._lock:
            del self._sources[name]

    def describe(self) -> Iterator[Any]:
        """The metric families without samples (what ``CollectorRegistry.register`` checks names with)."""
        return iter(self._families())

    def collect(self) -> Iterator[Any]:
        """Every source's snapshot, read now. A source whose ``metrics()`` raises is logged and left out."""
        with self._lock:
            sources = list(self._sources.items())
        families = self._families()
        gauges, refreshes, decrypts, encrypts, info = families[:-4], *families[-4:]
        for name, source in sources:
            try:
                m = source.metrics()
            except Exception:  # noqa: BLE001 - one broken source must not fail the whole scrape
                _log.exception("uid2fast metrics: %s.metrics() raised; left out of this scrape", name)
                continue
            for family, value in zip(gauges, _gauge_values(m)):
                if value is not None:
                    family.add_metric([name], float(value))
            refreshes.add_metric([name, "success"], m.refresh_successes)
            refreshes.add_metric([name, "failure"], m.refresh_failures)
            for status, n in m.decrypt.items():
                decrypts.add_metric([name, status.lower()], n)
            for status, n in m.encrypt.items():
                encrypts.add_metric([name, status.lower()], n)
            if m.last_refresh_success is not None:
                reason = (m.last_refresh_reason or "")[:_REASON_MAX]
                info.add_metric([name], {"result": "success" if m.last_refresh_success else "failure",
                                         "reason": reason})
        return iter(families)

    @staticmethod
    def _families() -> list:
        families: list = [GaugeMetricFamily(name, doc, labels=["client"]) for name, doc in _GAUGES]
        families.append(CounterMetricFamily("uid2fast_key_refresh", "Key refresh attempts by result.",
                                            labels=["client", "result"]))
        families.append(CounterMetricFamily("uid2fast_decrypt", "Token decrypt calls (batch rows) by status.",
                                            labels=["client", "status"]))
        families.append(CounterMetricFamily("uid2fast_encrypt", "Token encrypt calls (batch rows) by status.",
                                            labels=["client", "status"]))
        families.append(InfoMetricFamily("uid2fast_last_refresh", "Result and failure reason of the last key "
                                         "refresh attempt.", labels=["client"]))
        return families


def register(sources: Mapping[str, Any], registry: Optional[CollectorRegistry] = None) -> MetricsCollector:
    """Register a :class:`MetricsCollector` of ``sources`` (name to client or refresher) with ``registry``
    (default: ``prometheus_client.REGISTRY``) and return it; add more sources with its ``add``.

    >>> from prometheus_client import CollectorRegistry, generate_latest  # doctest: +SKIP
    >>> registry = CollectorRegistry()  # doctest: +SKIP
    >>> register({"bidstream": client}, registry)  # doctest: +SKIP
    >>> print(generate_latest(registry).decode())  # doctest: +SKIP
    """
    collector = MetricsCollector(sources)
    (REGISTRY if registry is None else registry).register(collector)
    return collector
