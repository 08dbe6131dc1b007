"""``audio-classifier numbers ...``: the registry from the command line."""

from __future__ import annotations

import csv
import json
import sys
from contextlib import contextmanager
from typing import Any

import click

from ..errors import AudioClassifierError
from ..labels import LABELS


def _registry_options(function):
    options = [
        click.option(
            "--db",
            "database",
            envvar="AUDIO_CLASSIFIER_NUMBERS_DB",
            help="The registry: a SQLite file or a URL (postgresql+psycopg://user@host/db) "
            "[default: numbers.sqlite in the user's data folder].",
        ),
        click.option(
            "--policy", type=click.Path(dir_okay=False, exists=True), help="Policy TOML [default: shipped]."
        ),
        click.option(
            "--region", default="CN", show_default=True, help="Region of numbers without a country code."
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@contextmanager
def _registry(database: str | None, policy: str | None, region: str):
    from .policy import Policy
    from .registry import Registry

    try:
        registry = Registry(database, policy=Policy.load(policy), region=region)
    except AudioClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield registry
    except AudioClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        registry.close()


@click.group()
def numbers() -> None:
    """The number registry: lead imports checked against the blocklist, outcomes, agent marks."""


@numbers.command("import")
@click.argument("leads", type=click.Path(exists=True, dir_okay=False))
@click.option("--source", required=True, help="The vendor or data source that supplied the file.")
@click.option("--list", "list_name", required=True, help="The calling list the numbers go on.")
@click.option("--accepted", type=click.Path(dir_okay=False), help="[default: LEADS.accepted.csv]")
@click.option("--rejected", type=click.Path(dir_okay=False), help="[default: LEADS.rejected.csv]")
@_registry_options
def import_command(leads, source, list_name, accepted, rejected, database, policy, region) -> None:
    """Import a lead file (a 'number' column; other columns kept): invalid, duplicate and
    blocked numbers are rejected with a reason; importing it again changes nothing."""
    with _registry(database, policy, region) as registry:
        result = registry.import_leads(
            leads, source=source, list_name=list_name, accepted=accepted, rejected=rejected
        )
    rejected_counts = ", ".join(f"{n} {kind}" for kind, n in sorted(result.rejected.items())) or "none"
    click.echo(
        f"{result.rows} rows: {result.accepted} accepted ({result.new_entries} new on list {list_name}, "
        f"{result.new_numbers} new numbers), rejected: {rejected_counts}"
    )
    click.echo(f"wrote {result.accepted_file} and {result.rejected_file}", err=True)


@numbers.command("record")
@click.argument("output", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--origin",
    type=click.Choice(["classifier", "signalling", "validation"]),
    default="classifier",
    show_default=True,
)
@_registry_options
def record_command(output, origin, database, policy, region) -> None:
    """Record the outcomes of a classify or evaluate output whose manifest had a 'number' column."""
    with _registry(database, policy, region) as registry:
        result = registry.record(output, origin=origin)
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(result.skipped.items())) or "none"
    click.echo(f"{result.added} outcomes recorded, {result.already} already recorded; skipped: {skipped}")


@numbers.command("mark")
@click.argument("number")
@click.argument("label", type=click.Choice(list(LABELS)))
@click.option("--by", "agent", required=True, help="The agent who heard it.")
@click.option("--note", help="Free text.")
@_registry_options
def mark_command(number, label, agent, note, database, policy, region) -> None:
    """An agent's mark: what the agent heard on a call to NUMBER."""
    with _registry(database, policy, region) as registry:
        state = registry.mark(number, label, by=agent, note=note)
    click.echo(f"{number}: {state.status} ({state.rule})")


@numbers.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True)
@_registry_options
def show_command(number, as_json, database, policy, region) -> None:
    """A number's state, the rule that decided it, and its history."""
    with _registry(database, policy, region) as registry:
        e164, state, history = registry.show(number)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "number": e164,
                    "state": state.status,
                    "rule": state.rule,
                    "due": state.due.isoformat() if state.due else None,
                    "history": history,
                },
                ensure_ascii=False,
                indent=2,
                default=str,
            )
        )
        return
    click.echo(f"{e164}: {state.status}")
    click.echo(f"  rule: {state.rule}")
    for event in history:
        who = f"agent {event['agent']}" if event["origin"] == "agent" else event["origin"]
        confidence = "" if event["confidence"] is None else f" {event['confidence']:.2f}"
        where = f"  {event['recording']}" if event.get("recording") else ""
        mark = "*" if event["id"] in state.outcomes else " "
        click.echo(f"{mark} {event['at']}  {event['label']:20s}{confidence:6s}  {who}{where}")


def _write(out: str | None, columns: list[str], rows: list[dict[str, Any]]) -> None:
    try:
        handle = open(out, "w", newline="", encoding="utf-8") if out else sys.stdout
    except OSError as exc:
        raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    try:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    finally:
        if out:
            handle.close()


@numbers.command("export")
@click.option("--list", "list_name", required=True)
@click.option("--active", is_flag=True, help="Only the numbers a dialer may call now.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="[default: stdout]")
@_registry_options
def export_command(list_name, active, output, database, policy, region) -> None:
    """A list's numbers as CSV (number, source, state, rule)."""
    with _registry(database, policy, region) as registry:
        rows = registry.list_numbers(list_name, active=active)
    _write(
        output,
        ["number", "source", "state", "rule"],
        [{"number": e, "source": source, "state": s.status, "rule": s.rule} for e, source, s in rows],
    )


@numbers.command("due")
@click.option(
    "--older-than",
    "older_than",
    default="90d",
    show_default=True,
    help="Age of the latest outcome (e.g. 30d, 12h).",
)
@click.option("--list", "list_name", help="Only numbers on this list.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="[default: stdout]")
@_registry_options
def due_command(older_than, list_name, output, database, policy, region) -> None:
    """The re-validation queue: numbers whose latest outcome is older than --older-than."""
    from .policy import parse_duration

    try:
        age = parse_duration(older_than)
    except AudioClassifierError as exc:
        raise click.BadParameter(str(exc), param_hint="--older-than") from None
    with _registry(database, policy, region) as registry:
        rows = registry.due(age, list_name=list_name)
    _write(
        output,
        ["number", "state", "last_outcome"],
        [{"number": e, "state": s.status, "last_outcome": at.isoformat() if at else ""} for e, s, at in rows],
    )


@numbers.command("forget")
@click.argument("number")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@_registry_options
def forget_command(number, yes, database, policy, region) -> None:
    """Erase NUMBER and its history (a blocked number stays blocked by its hash, as the policy says)."""
    if not yes:
        click.confirm(f"erase {number} and everything recorded about it?", abort=True)
    with _registry(database, policy, region) as registry:
        e164, state, kept = registry.forget(number)
    click.echo(f"{e164}: erased (it was {state.status}){'; its hash stays on the blocklist' if kept else ''}")


@numbers.command("report")
@click.option(
    "--by", type=click.Choice(["source", "list", "import", "month"]), default="source", show_default=True
)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="[default: stdout]")
@click.option(
    "--chart", type=click.Path(dir_okay=False), help="Also draw the invalid rates with their intervals (PNG)."
)
@_registry_options
def report_command(by, fmt, output, chart, database, policy, region) -> None:
    """Invalid numbers per vendor (or list, import, month) with 95 % intervals, and the
    clearance audit: blocked numbers an export would still return (must be 0)."""
    with _registry(database, policy, region) as registry:
        report = registry.report(by)
    if fmt == "json":
        text = json.dumps(report, indent=2)
        if output:
            with open(output, "w", encoding="utf-8") as handle:
                handle.write(text + "\n")
        else:
            click.echo(text)
    else:
        columns = [by, "entries", "invalid", "blocked_other", "invalid_rate", "ci95_low", "ci95_high"]
        _write(
            output,
            columns,
            [
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in g.items()}
                for g in report["groups"]
            ],
        )
    click.echo(
        f"clearance audit: {report['blocked_on_lists']} blocked numbers on lists, "
        f"{report['blocked_still_callable']} of them still callable by an export",
        err=True,
    )
    if chart:
        _chart(report, by, chart)
    if report["blocked_still_callable"]:
        sys.exit(1)


def _chart(report: dict, by: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = report["groups"]
    names = [str(g[by]) for g in groups]
    rates = [g["invalid_rate"] for g in groups]
    errors = [
        [r - g["ci95_low"] for r, g in zip(rates, groups, strict=True)],
        [g["ci95_high"] - r for r, g in zip(rates, groups, strict=True)],
    ]
    fig, ax = plt.subplots(figsize=(max(4, 0.6 * len(names) + 2), 4))
    ax.bar(names, rates, yerr=errors, capsize=4, color="#c44")
    ax.set_ylabel("invalid rate (95 % interval)")
    ax.set_xlabel(by)
    ax.set_title("invalid numbers by " + by)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


@numbers.group("blocklist")
def blocklist() -> None:
    """The numbers no list may call."""


@blocklist.command("export")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="[default: stdout]")
@_registry_options
def blocklist_export(output, database, policy, region) -> None:
    """Every blocked number with the rule that blocked it, as CSV."""
    with _registry(database, policy, region) as registry:
        rows = registry.blocked()
    _write(output, ["number", "rule"], [{"number": e, "rule": s.rule} for e, s in rows])
