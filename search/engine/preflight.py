"""What must hold before a sweep starts: every option, case, store and address checked, one line each.

:func:`validate` runs every check that needs no Ray, cheapest first, before anything is started or recorded;
:func:`check_resources` runs once Ray is up, before the first trial. Both raise :class:`SweepError`, whose message
names the option, says what must hold and echoes the value.

Example:
    >>> check_resources([{"CPU": 2.0}], cpus_per_trial=1, gpus_per_trial=0)
    >>> check_resources([{"CPU": 2.0}], cpus_per_trial=1, gpus_per_trial=1)
    Traceback (most recent call last):
    ...
    search.engine.preflight.SweepError: --gpus-per-trial must be 0 on a cluster without GPUs, got 1
"""

from __future__ import annotations

import math
import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from analysis.records import StoreError, check_journal, check_output_folder, check_tracking_uri, redact
from spaces import PROFILES, Case, get_case

__all__ = [
    "HANDSHAKE_TIMEOUT",
    "PARTS",
    "SEED_MAX",
    "SweepError",
    "check_address",
    "check_cases",
    "check_resources",
    "validate",
]

PARTS = ("ablation", "search")

SEED_MAX = 2**32 - 1
"""The largest seed every seeded library takes (NumPy's, under Optuna's samplers)."""

HANDSHAKE_TIMEOUT = 5.0
"""Seconds a Ray head node has to answer the check's handshake."""

_RAY_UNIT = 1e-4  # Ray counts resources in steps of 0.0001 and refuses a finer share
# The HTTP/2 client preface and an empty SETTINGS frame: a gRPC server (Ray's GCS, Ray Client's server) answers
# with a SETTINGS frame of its own; an HTTP/1 server answers with text, or closes.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_H2_SETTINGS = 0x04


class SweepError(ValueError):
    """A sweep that cannot start: a bad option, case or store, or an unreachable Ray cluster or tracking server."""


def validate(options: Any) -> list[Case]:
    """Every check of a sweep's options that needs no Ray, cheapest first; returns the cases, loaded.

    ``options`` has the attributes of ``SweepOptions``. Options first (no I/O), then local folders and files,
    then the cases (imports a user's file), then the tracking server and the Ray address (network, with a
    timeout).

    Raises:
        SweepError: in one line, naming the option and what must hold.
    """
    _check_options(options)
    try:
        check_output_folder(options.results_dir, "--results-dir")
        if "search" in options.parts:
            check_journal(options.optuna_storage, writer=True)
        if options.tracking_uri.startswith("sqlite:"):
            check_tracking_uri(options.tracking_uri, writer=True)
            if getattr(options, "resume", False):  # and an existing store: a resume starts none
                check_tracking_uri(options.tracking_uri, writer=False)
        cases = check_cases(options.cases)
        if not options.tracking_uri.startswith("sqlite:"):
            check_tracking_uri(options.tracking_uri, writer=True)
    except StoreError as exc:
        raise SweepError(str(exc)) from None
    if options.address:
        check_address(options.address)
    elif os.environ.get("RAY_ADDRESS"):  # ray.init joins it when no address is given
        check_address(os.environ["RAY_ADDRESS"], option="RAY_ADDRESS")
    else:  # a local instance, on this machine: a request it cannot hold is refused before Ray starts
        check_resources([_this_machine()], options.cpus_per_trial, options.gpus_per_trial, local=True)
    return cases


def _this_machine() -> dict[str, float]:
    """The most a local Ray instance can find here: the CPUs the OS reports, the GPUs torch sees. (Ray may find
    fewer CPUs under a container's quota; the check against what it found runs once it is up.)"""
    import torch

    return {"CPU": float(os.cpu_count() or 1), "GPU": float(torch.cuda.device_count())}


def check_cases(refs: Sequence[str], what: str = "sweep") -> list[Case]:
    """The cases named by ``refs``, each once: two with one name would share one record, so they are refused.

    A case of the user's own (``file.py:NAME``) is also run for one training step (:func:`check_case`): a model
    whose output does not match its targets, data holding NaN or a loss that is not a scalar is refused here, in
    one line, rather than judged ``collapsed`` or ``diverged`` after a whole sweep.
    """
    from search.trainer.check import check_case

    if not refs:
        raise SweepError(f"name the cases to {what} or pass --all")
    cases = [get_case(ref) for ref in refs]
    seen: dict[str, str] = {}
    for ref, case in zip(refs, cases, strict=True):
        if seen.get(case.name) == ref:
            raise SweepError(f"cases must be named once each, got {ref!r} twice")
        if case.name in seen:
            raise SweepError(
                f"cases must have distinct names, got {case.name!r} from both {seen[case.name]!r} and {ref!r}"
            )
        seen[case.name] = ref
    for ref, case in zip(refs, cases, strict=True):
        _check_labels(ref, case)
        if ":" in ref:
            check_case(case)
    return cases


def _check_labels(ref: str, case: Case) -> None:
    """A trial is recorded under its label (values shown to 3 significant digits): two grid values that show alike
    would be two trials under one key, one of them lost."""
    from search.engine.plan import ablation

    seen: dict[str, dict[str, Any]] = {}
    for spec in ablation(case, seeds=1):
        if spec.label in seen and seen[spec.label] != spec.overrides:
            raise SweepError(
                f"case {ref!r}: its factors' grid values must differ in their first 3 significant digits, got "
                f"{seen[spec.label]} and {spec.overrides} (both {spec.label!r})"
            )
        seen[spec.label] = spec.overrides


def check_address(address: str, timeout: float | None = None, option: str = "--address") -> None:
    """Raises :class:`SweepError` unless a Ray head node (a gRPC server) answers at ``address`` within ``timeout``.

    A handshake, not a port probe: anything else listening there (a web server, a silent port) is refused, where
    ``ray.init`` would wait for it without end. ``auto`` is left to Ray. ``timeout``: :data:`HANDSHAKE_TIMEOUT`.
    """
    if address == "auto":
        return
    timeout = HANDSHAKE_TIMEOUT if timeout is None else timeout
    shown = redact(address)
    host, port = _host_port(address.removeprefix("ray://"))
    if host is None:
        raise SweepError(f"{option} must be HOST:PORT of a Ray head node (or auto), got {shown!r}")
    try:
        connection = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise SweepError(
            f"{option} must be a running Ray head node, got {shown!r} ({exc.strerror or exc}); start one with "
            f"`ray start --head` or drop {option}"
        ) from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        connection.close()  # TLS comes before HTTP/2: the preface below would not be understood
        return
    with connection:
        try:
            connection.sendall(_H2_PREFACE)
            answer = _receive(connection, 9)
        except TimeoutError:
            raise SweepError(
                f"{option} must be a Ray head node, got {shown!r} (no answer to a gRPC handshake in {timeout:g} s)"
            ) from None
        except OSError as exc:
            answer = f"{exc.strerror or exc}".encode()
    if len(answer) == 9 and answer[3] == _H2_SETTINGS and answer[5:9] == bytes(4):
        return
    if answer.startswith((b"HTTP/", b"<")):  # a status line, or an error page without one
        said = "a web server answers there"
    else:
        said = "the server there closed the connection" if not answer else "what answers there"
    raise SweepError(f"{option} must be a Ray head node, got {shown!r} ({said}, not Ray's gRPC)")


def check_resources(
    nodes: Sequence[Mapping[str, float]], cpus_per_trial: float, gpus_per_trial: float | None, local: bool = False
) -> None:
    """Raises :class:`SweepError` unless some node can hold one trial, whose request would otherwise wait forever.

    Args:
        nodes: each alive node's resources (``ray.nodes()``' ``Resources``), e.g. ``{"CPU": 16.0, "GPU": 2.0}``.
        cpus_per_trial: CPUs each trial asks for.
        gpus_per_trial: GPUs (or a share of one) each trial asks for; None or 0 for none.
        local: ``nodes`` is this machine, on which a local Ray instance is yet to start (the messages say so).
    """
    cpus, gpus = cpus_per_trial, gpus_per_trial or 0.0
    if not nodes:
        raise SweepError("the Ray cluster must have an alive node, got none")
    most_cpus = max(node.get("CPU", 0.0) for node in nodes)
    most_gpus = max(node.get("GPU", 0.0) for node in nodes)
    place = "this machine" if local else "a cluster"

    def most(kind: str) -> str:
        return f"this machine's {kind}" if local else f"the most {kind} of any node"

    if gpus > 0 and most_gpus <= 0:
        raise SweepError(f"--gpus-per-trial must be 0 on {place} without GPUs, got {gpus:g}")
    if not _fits(cpus, most_cpus):
        raise SweepError(f"--cpus-per-trial must be at most {most_cpus:g} ({most('CPUs')}), got {cpus:g}")
    if not _fits(gpus, most_gpus):
        raise SweepError(f"--gpus-per-trial must be at most {most_gpus:g} ({most('GPUs')}), got {gpus:g}")
    if not any(_fits(cpus, n.get("CPU", 0.0)) and _fits(gpus, n.get("GPU", 0.0)) for n in nodes):
        raise SweepError(
            f"--cpus-per-trial and --gpus-per-trial must fit on one node, got {cpus:g} CPUs and {gpus:g} GPUs; "
            f"nodes have {sorted((n.get('CPU', 0.0), n.get('GPU', 0.0)) for n in nodes)} (CPUs, GPUs)"
        )


def _check_options(options: Any) -> None:
    parts = list(options.parts)
    if not parts or any(part not in PARTS for part in parts):
        raise SweepError(f"--parts must be a comma-separated subset of {list(PARTS)}, got {','.join(parts)!r}")
    if options.profile not in PROFILES:
        raise SweepError(f"--profile must be one of {list(PROFILES)}, got {options.profile!r}")
    _integer("--trials", options.trials, 0)
    if parts == ["search"] and options.trials == 0:
        raise SweepError("--trials must be >= 1 when --parts is search alone (0 trials would sweep nothing), got 0")
    _integer("--seeds", options.seeds, 1)
    _integer("--seed", options.seed, 0, SEED_MAX)
    _share("--cpus-per-trial", options.cpus_per_trial, zero=False)
    if options.gpus_per_trial is not None:
        _share("--gpus-per-trial", options.gpus_per_trial, zero=True)
    if options.max_concurrent is not None:
        _integer("--max-concurrent", options.max_concurrent, 1)
    patience = getattr(options, "store_patience", 600.0)
    if isinstance(patience, bool) or not isinstance(patience, int | float) or not 0 < patience < math.inf:
        raise SweepError(f"--store-patience must be a finite number of seconds > 0, got {patience!r}")
    if not options.experiment or not options.experiment.strip():
        raise SweepError(f"--experiment must be a name, got {options.experiment!r}")


def _integer(option: str, value: Any, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        holds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise SweepError(f"{option} must be an integer {holds}, got {value!r}")


def _share(option: str, value: Any, *, zero: bool) -> None:
    """A resource request: finite, and 0 (where allowed) or at least Ray's smallest step."""
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and math.isfinite(value) and ((zero and value == 0) or value >= _RAY_UNIT):
        return
    holds = f"0 or a finite number >= {_RAY_UNIT:g}" if zero else f"a finite number >= {_RAY_UNIT:g}"
    raise SweepError(f"{option} must be {holds}, got {value!r}")


def _fits(asked: float, has: float) -> bool:
    return round(asked / _RAY_UNIT) <= round(has / _RAY_UNIT)  # in Ray's own steps: no float noise


def _host_port(text: str) -> tuple[str | None, int]:
    host, _, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")  # [::1]:6379
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None, 0
    return host, int(port)


def _receive(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
