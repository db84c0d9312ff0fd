"""Command line: `python main.py <command>` (see `--help`).

Every command takes --config FILE (or GEO_CONSOLE_CONFIG). Bad input ends
with one line on stderr and a non-zero exit, and changes nothing.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys


EXIT_ERROR = 1
EXIT_USAGE = 2


class UsageError(Exception):
    pass


# Messages may quote what the user typed (arguments, file names): whatever
# they hold, the error stays one line on stderr.
_LINE_BREAKS = str.maketrans({char: repr(char)[1:-1]
                              for char in "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"})


def _one_line(message: str) -> str:
    return str(message).translate(_LINE_BREAKS)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + message; we want one line
        raise UsageError(message)


def _common_options(top_level: bool) -> argparse.ArgumentParser:
    """--config and --type, accepted before or after the command.

    Only the top level sets defaults; below it they are suppressed so a
    subcommand never overwrites a value given before it.
    """
    common = OneLineParser(add_help=False)
    config_default = os.environ.get("GEO_CONSOLE_CONFIG") if top_level else argparse.SUPPRESS
    common.add_argument("--config", metavar="FILE", default=config_default,
                        help="TOML configuration (default: $GEO_CONSOLE_CONFIG)")
    for flag, text in (("--site", "a secondary elsewhere, Geo Console's or GitLab's: its "
                                  "URL (token: the console's, or $GEO_CONSOLE_GITLAB_TOKEN)"),
                       ("--gitlab-db", "a GitLab secondary's tracking database: "
                                       "postgresql://USER@HOST/DB (password: $PGPASSWORD or "
                                       "~/.pgpass)")):
        common.add_argument(flag, metavar="URL", default=None if top_level else argparse.SUPPRESS,
                            help=text)
    common.add_argument("--through", metavar="ID", type=int,
                        default=None if top_level else argparse.SUPPRESS,
                        help="with --site: another secondary of that GitLab deployment, by "
                             "its id, through the site's proxy")
    common.add_argument("--type", dest="replicable", metavar="NAME",
                        default=None if top_level else argparse.SUPPRESS,
                        help="replicable type, e.g. cool_widget or package_file (default: "
                             "every type; new files are Cool Widgets)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options(top_level=False)
    parser = OneLineParser(prog="geo-console", parents=[_common_options(top_level=True)],
                           description="Replicate and verify blobs (Cool Widgets, Package Files) "
                                       "between Geo sites.")
    commands = parser.add_subparsers(dest="command", parser_class=OneLineParser)

    primary = commands.add_parser("primary", parents=[common], help="the primary site")
    primary_commands = primary.add_subparsers(dest="primary_command", parser_class=OneLineParser)
    primary_commands.add_parser("serve", parents=[common], help="serve the Geo API and checksum")
    project = primary_commands.add_parser("project", parents=[common], help="projects")
    project_commands = project.add_subparsers(dest="project_command", parser_class=OneLineParser)
    project_add = project_commands.add_parser("add", parents=[common], help="create a project")
    project_add.add_argument("name")
    project_add.add_argument("--namespace", required=True, metavar="PATH",
                             help="namespace path such as group/sub (created as a tree)")
    project_add.add_argument("--shard", default="default", help="repository storage shard")
    add = primary_commands.add_parser("add", parents=[common],
                                      help="store files (Cool Widgets unless --type)")
    add.add_argument("files", nargs="+", metavar="FILE")
    add.add_argument("--project-id", type=int, metavar="N")
    add.add_argument("--object-storage", action="store_true",
                     help="store in object storage (file_store 2)")
    delete = primary_commands.add_parser("delete", parents=[common],
                                         help="delete records of --type by id")
    delete.add_argument("ids", nargs="+", type=int, metavar="ID")
    primary_commands.add_parser("list", parents=[common], help="list the stored records")

    secondary = commands.add_parser("secondary", parents=[common], help="a secondary site")
    secondary_commands = secondary.add_subparsers(dest="secondary_command",
                                                  parser_class=OneLineParser)
    secondary_commands.add_parser("run", parents=[common], help="run the engine headless")

    status = commands.add_parser("status", parents=[common], help="geo:status")
    status.add_argument("--json", action="store_true")
    commands.add_parser("check", parents=[common],
                        help="exit 0 only when everything is synced and verified")

    def add_filters(sub):
        sub.add_argument("--replication-state", metavar="S",
                         help="pending, started, synced or failed")
        sub.add_argument("--verification-state", metavar="S",
                         help="pending, started, succeeded, failed or disabled")

    registries = commands.add_parser("registries", parents=[common], help="list registries")
    add_filters(registries)
    registries.add_argument("--json", action="store_true")
    registries.add_argument("--limit", type=int, metavar="N")
    for name, text in (("resync", "download again"), ("reverify", "verify again")):
        action = commands.add_parser(name, parents=[common], help=f"{text}: registry ids or --all")
        action.add_argument("ids", nargs="*", type=int, metavar="ID")
        action.add_argument("--all", action="store_true", help="every registry of the filter")
        add_filters(action)

    report = commands.add_parser("report", parents=[common],
                                 help="registries of the filter to CSV or JSON, or the status "
                                      "with history charts to PDF")
    report.add_argument("--format", required=True, choices=("csv", "json", "pdf"))
    report.add_argument("--output", required=True, metavar="PATH")
    report.add_argument("--range", dest="history_range", default="day",
                        choices=("hour", "day", "week", "month"),
                        help="PDF: the history the charts show, up to now (default: day)")
    add_filters(report)

    demo = commands.add_parser("demo", parents=[common], help="primary + secondary demo")
    demo.add_argument("--headless", action="store_true", help="no window; print progress")
    demo.add_argument("--workspace", metavar="DIR")
    demo.add_argument("--duration", type=float, metavar="SECONDS")

    db = commands.add_parser("db", parents=[common], help="databases")
    db_commands = db.add_subparsers(dest="db_command", parser_class=OneLineParser)
    db_commands.add_parser("upgrade", parents=[common], help="apply migrations")
    return parser


def main(argv: list[str] | None = None, open_console=None, write_pdf=None,
         open_source=None) -> int:
    """Run a command. `open_console(workspace=None, config_path=None)`,
    `write_pdf(path, StatusReport)` and `open_source(kind, url)` (the
    console's source of a site elsewhere, for --site and --gitlab-db) are
    given by the launcher when the console is installed: the backend never
    imports it."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        args.open_console = open_console
        args.write_pdf = write_pdf
        args.open_source = open_source
        if args.command and (args.site or args.gitlab_db):
            from backend import source_commands
            return source_commands.dispatch(args)
        if not args.command:
            if open_console is None:
                raise UsageError("the console is not installed (pip install -e .[console]); "
                                 "see --help for the commands")
            return open_console(config_path=args.config)
        from backend import commands
        return commands.dispatch(args)
    except UsageError as exc:
        print(f"geo-console: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`primary list | head`): nothing more to say,
        # and Python must not complain about stdout at exit either.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except Exception as exc:  # one line, never a traceback
        from backend.commands import describe_error
        print(f"geo-console: error: {_one_line(describe_error(exc))}", file=sys.stderr)
        logging.getLogger(__name__).debug("command failed", exc_info=True)
        return EXIT_ERROR
