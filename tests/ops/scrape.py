"""Talking to a process's ops port in tests: where it is, its probes, its metrics."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from core.settings import Settings

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def ops_url(stack: Settings, role: str, pid: int, timeout: float = 120.0) -> str:
    """The base URL (``http://host:port``) a process registered for its ops port."""
    path = stack.stack_path / "metrics" / f"{role}-{pid}.url"
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{role} {pid} never registered {path}")
        await asyncio.sleep(0.2)
    url = _read(path)
    assert url.endswith("/metrics"), url
    return url.removesuffix("/metrics")


def _read(path: Path) -> str:
    # The file may be seen between its creation and its write.
    for _ in range(50):
        text = path.read_text().strip()
        if text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"{path} stays empty")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - loopback only
            return int(answer.status), answer.read().decode()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read().decode()


async def get(url: str) -> tuple[int, str]:
    """Status and body of a GET (any status), off the event loop."""
    return await asyncio.to_thread(_get, url)


async def probe(base: str, path: str) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of ``/healthz`` or ``/readyz``."""
    status, body = await get(base + path)
    parsed: dict[str, Any] = json.loads(body)
    return status, parsed


async def wait_ready(base: str, timeout: float = 180.0) -> dict[str, Any]:
    """Wait until ``/readyz`` answers 200; its body."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = await probe(base, "/readyz")
        if status == 200:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"never ready: {status} {body}")
        await asyncio.sleep(0.5)


async def scrape(base: str) -> Samples:
    """Every sample of ``/metrics``, by name and labels."""
    status, text = await get(base + "/metrics")
    assert status == 200, text[:500]
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when the process has not exported it (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def labelled(samples: Samples, name: str) -> list[dict[str, str]]:
    """The label sets of every sample of ``name``."""
    return [dict(labels) for sample, labels in samples if sample == name]


async def scrape_until(
    base: str, done: Callable[[Samples], bool], timeout: float = 30.0
) -> Samples:
    """Scrape until ``done`` holds (the worker counts a batch right after its commit, and
    the gauges every few seconds); the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        samples = await scrape(base)
        if done(samples):
            return samples
        if time.monotonic() > deadline:
            shown = sorted(samples)[:80]
            raise AssertionError(f"the metrics never got there; last scrape: {shown}")
        await asyncio.sleep(0.5)
