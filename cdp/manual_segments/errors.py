"""What can go wrong with a manual-segment command, and the helpers its messages share.

Every message says what failed and what to do next, naming profiles by profile id only:
never an email address or any other personal data. A warehouse another process is writing
raises :class:`cdp.warehouse.WarehouseBusyError` (the one translation of DuckDB's lock
error), not an error of this family.
"""

from __future__ import annotations

from collections.abc import Sequence

#: How many ids an error message lists before saying "and N more".
IDS_SHOWN_IN_ERRORS = 20


class ManualSegmentError(Exception):
    """A command could not be carried out; the message says why and what to do (no personal data)."""


class SegmentNotFoundError(ManualSegmentError):
    pass


class SegmentExistsError(ManualSegmentError):
    pass


class InvalidSegmentNameError(ManualSegmentError):
    pass


class UnknownProfilesError(ManualSegmentError):
    def __init__(self, message: str, profile_ids: Sequence[str]):
        super().__init__(message)
        self.profile_ids = list(profile_ids)


class NotMembersError(ManualSegmentError):
    def __init__(self, message: str, profile_ids: Sequence[str]):
        super().__init__(message)
        self.profile_ids = list(profile_ids)


def not_found(name: str) -> SegmentNotFoundError:
    return SegmentNotFoundError(
        f"No manual segment named {name!r}. `cdp segments list` shows them; `cdp segments create {name}` creates it."
    )


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def format_ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:IDS_SHOWN_IN_ERRORS])
    more = len(ids) - IDS_SHOWN_IN_ERRORS
    return shown + (f" … and {more} more" if more > 0 else "")
